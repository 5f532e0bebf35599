//! Examples live in the files next to this crate; see README.
