//! The specification of aio, as integration tests.
