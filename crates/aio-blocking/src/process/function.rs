//! [`Function`]: a typed handle to a function that workers can run, by its stable name.

use std::fmt;

/// A function that a [`ProcessPool`](crate::ProcessPool) can run in its workers: a plain
/// `fn(A) -> R` and the stable name it is called by across the process boundary.
///
/// A handle is what [`submit`](crate::ProcessPool::submit) and
/// [`map`](crate::ProcessPool::map) take, so a call is type-checked against the handle: the
/// argument must be an `A`, and the handle resolves to an `R`. Only the name and the
/// encoded argument cross to the worker; there the same handle, listed in the same
/// [`Registry`](super::Registry), maps the name back to the function. Several arguments
/// travel as a tuple. The registry knows a function by its name alone, so two handles
/// must never share a name with different types.
///
/// Declare handles as `const`s or `static`s next to the functions, with
/// [`remote_fn!`](crate::remote_fn) (named after the function's path) or with
/// [`Function::new`] and a name of your choice. Names must be unique in a registry and
/// the same in the pool's process and in its workers, which is what a shared declaration
/// gives.
///
/// # Examples
///
/// ```
/// use aio_blocking::process::Function;
/// use aio_blocking::remote_fn;
///
/// fn add((a, b): (u64, u64)) -> u64 {
///     a + b
/// }
///
/// const ADD: Function<(u64, u64), u64> = remote_fn!(add);
/// const ADD_AGAIN: Function<(u64, u64), u64> = Function::new("math::add", add);
/// assert!(ADD.name().ends_with("::add"));
/// assert_eq!(ADD_AGAIN.name(), "math::add");
/// ```
pub struct Function<A, R> {
    name: &'static str,
    pub(crate) f: fn(A) -> R,
}

impl<A, R> Function<A, R> {
    /// A handle to `f`, called `name` across the process boundary.
    pub const fn new(name: &'static str, f: fn(A) -> R) -> Self {
        Function { name, f }
    }

    /// The stable name workers know the function by.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<A, R> Clone for Function<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Function<A, R> {}

impl<A, R> fmt::Debug for Function<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("args", &std::any::type_name::<A>())
            .field("output", &std::any::type_name::<R>())
            .finish()
    }
}

/// A [`Function`] handle named after the function's path: `remote_fn!(resize)` written in
/// module `app::images` is `Function::new("app::images::resize", resize)`.
///
/// The name comes from where the macro is written, so declare the handle once, next to the
/// function, and use that declaration in both the pool and the worker's registry.
///
/// # Examples
///
/// ```
/// use aio_blocking::process::Function;
///
/// fn double(x: u32) -> u32 {
///     2 * x
/// }
///
/// pub const DOUBLE: Function<u32, u32> = aio_blocking::remote_fn!(double);
/// assert_eq!(DOUBLE.name(), concat!(module_path!(), "::double"));
/// ```
#[macro_export]
macro_rules! remote_fn {
    ($f:ident) => {
        $crate::process::Function::new(concat!(module_path!(), "::", stringify!($f)), $f)
    };
}
