//! `#[aio::main]` and `#[aio::test]`: Tokio's attributes, running the function under
//! `aio::run`'s rules. Use them through the facade, the package `aio-rs` (library `aio`).

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Runs `async fn main` on a new Tokio runtime under `aio::run`'s rules: the body runs in a
/// root scope, and before the runtime shuts down aio's background work (the cleanup of task
/// groups dropped before they finished) gets its grace period.
///
/// Options, all optional: `flavor = "multi_thread"` (the default) or `"current_thread"`,
/// `worker_threads = N`, and `process = <registry>`, which calls
/// `aio::process::init(<registry>)` first, before any runtime or thread exists, as the
/// process pool requires.
///
/// ```ignore
/// #[aio::main(worker_threads = 2)]
/// async fn main() -> Result<(), aio::BoxError> { Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, Kind::Main)
}

/// Runs an `async fn` test on a new Tokio runtime under `aio::run`'s rules, as
/// `#[tokio::test]` does: `current_thread` by default; `flavor`, `worker_threads` and
/// `start_paused = true` (which needs Tokio's `test-util` feature) as for `#[tokio::test]`.
///
/// ```ignore
/// #[aio::test(start_paused = true)]
/// async fn a_deadline_passes() {
///     let r = aio::timeout(std::time::Duration::from_secs(5), std::future::pending::<()>()).await;
///     assert!(r.is_err());
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, Kind::Test)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main,
    Test,
}

/// What the attribute's arguments ask for.
struct Options {
    multi_thread: bool,
    worker_threads: Option<TokenStream>,
    start_paused: bool,
    process: Option<TokenStream>,
}

fn expand(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    match try_expand(args, item.clone(), kind) {
        Ok(tokens) => tokens,
        Err((span, message)) => {
            // The function as written, beside the error: no second error about a missing
            // `main`.
            let mut out = compile_error(span, &message);
            out.extend(item);
            out
        }
    }
}

type Error = (Span, String);

fn try_expand(args: TokenStream, item: TokenStream, kind: Kind) -> Result<TokenStream, Error> {
    let options = parse_options(args, kind)?;
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let Some(TokenTree::Group(body)) = tokens.pop() else {
        return Err((
            Span::call_site(),
            "expected an `async fn` with a body".into(),
        ));
    };
    if body.delimiter() != Delimiter::Brace {
        return Err((body.span(), "expected an `async fn` with a body".into()));
    }
    let is_async = |t: &TokenTree| matches!(t, TokenTree::Ident(i) if i.to_string() == "async");
    let Some(at) = tokens.iter().position(is_async) else {
        let span = tokens.first().map_or(Span::call_site(), TokenTree::span);
        return Err((span, "the function must be `async`".into()));
    };
    tokens.remove(at);
    let is_fn = |t: &TokenTree| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn");
    let name = tokens
        .iter()
        .position(is_fn)
        .and_then(|i| tokens.get(i + 1))
        .map(ToString::to_string);
    if kind == Kind::Main && name.as_deref() != Some("main") {
        return Err((body.span(), "#[aio::main] goes on `async fn main`".into()));
    }

    if kind == Kind::Test && has_test_attribute(&tokens) {
        let message = "#[aio::test] already makes this a test: remove #[test]";
        return Err((body.span(), message.into()));
    }
    let mut out = TokenStream::new();
    if kind == Kind::Test {
        out.extend(parse("#[::core::prelude::v1::test]"));
    }
    out.extend(tokens);
    let mut inner = TokenStream::new();
    if let Some(registry) = options.process {
        inner.extend(parse("::aio::process::init"));
        inner.extend([paren(registry), punct(';')]);
    }
    let builder = if options.multi_thread {
        "new_multi_thread"
    } else {
        "new_current_thread"
    };
    inner.extend(parse(&format!(
        "let mut __aio_builder = ::aio::__private::tokio::runtime::Builder::{builder}();\
         __aio_builder.enable_all();"
    )));
    if let Some(n) = options.worker_threads {
        inner.extend(parse("__aio_builder.worker_threads"));
        inner.extend([paren(n), punct(';')]);
    }
    if options.start_paused {
        inner.extend(parse("__aio_builder.start_paused(true);"));
    }
    inner.extend(parse("::aio::__private::run"));
    let mut call = parse("&mut __aio_builder, async move");
    // The body keeps its spans, so errors inside it point at the user's code.
    call.extend([TokenTree::Group(body)]);
    inner.extend([paren(call)]);
    out.extend([TokenTree::Group(Group::new(Delimiter::Brace, inner))]);
    Ok(out)
}

fn parse_options(args: TokenStream, kind: Kind) -> Result<Options, Error> {
    let mut options = Options {
        multi_thread: kind == Kind::Main,
        worker_threads: None,
        start_paused: false,
        process: None,
    };
    let mut flavor = None;
    let mut seen = Vec::new();
    let mut tokens = args.into_iter();
    while let Some(key) = tokens.next() {
        let TokenTree::Ident(key) = key else {
            return Err((key.span(), "expected `name = value`".into()));
        };
        match tokens.next() {
            Some(TokenTree::Punct(p)) if p.as_char() == '=' => {}
            _ => return Err((key.span(), format!("expected `{key} = ...`"))),
        }
        let name = key.to_string();
        if seen.contains(&name) {
            return Err((key.span(), format!("`{name}` is given twice")));
        }
        seen.push(name.clone());
        let value = option_value(&mut tokens);
        let text = value.to_string();
        match name.as_str() {
            "flavor" => match text.as_str() {
                "\"multi_thread\"" => flavor = Some(true),
                "\"current_thread\"" => flavor = Some(false),
                _ => {
                    let message = "`flavor` is \"multi_thread\" or \"current_thread\"";
                    return Err((key.span(), message.into()));
                }
            },
            "worker_threads" => options.worker_threads = Some(value),
            "start_paused" if kind == Kind::Test => match text.as_str() {
                "true" => options.start_paused = true,
                "false" => options.start_paused = false,
                _ => return Err((key.span(), "`start_paused` is `true` or `false`".into())),
            },
            "process" if kind == Kind::Main => options.process = Some(value),
            other => {
                let known = match kind {
                    Kind::Main => "`flavor`, `worker_threads` or `process`",
                    Kind::Test => "`flavor`, `worker_threads` or `start_paused`",
                };
                return Err((
                    key.span(),
                    format!("unknown option `{other}`: expected {known}"),
                ));
            }
        }
    }
    match (flavor, &options.worker_threads) {
        (Some(false), Some(_)) => {
            let message = "`worker_threads` needs `flavor = \"multi_thread\"`";
            return Err((Span::call_site(), message.into()));
        }
        (Some(multi_thread), _) => options.multi_thread = multi_thread,
        (None, Some(_)) => options.multi_thread = true,
        (None, None) => {}
    }
    if options.start_paused && options.multi_thread {
        let message = "`start_paused` needs `flavor = \"current_thread\"`";
        return Err((Span::call_site(), message.into()));
    }
    Ok(options)
}

/// The tokens of an option's value: everything up to the next comma that is not inside
/// brackets or generic arguments (`process = make::<A, B>(x, y)` is one value).
fn option_value(tokens: &mut proc_macro::token_stream::IntoIter) -> TokenStream {
    let mut value = TokenStream::new();
    let mut angle = 0usize;
    let mut previous = None;
    for t in tokens.by_ref() {
        if let TokenTree::Punct(p) = &t {
            match p.as_char() {
                ',' if angle == 0 => break,
                '<' => angle += 1,
                // Not the `>` of `->` or `=>`.
                '>' if !matches!(previous, Some('-' | '=')) => angle = angle.saturating_sub(1),
                _ => {}
            }
            previous = Some(p.as_char());
        } else {
            previous = None;
        }
        value.extend([t]);
    }
    value
}

/// Whether the function already carries a `#[test]` (or `#[core::prelude::v1::test]`)
/// attribute.
fn has_test_attribute(tokens: &[TokenTree]) -> bool {
    tokens.windows(2).any(|pair| match pair {
        [TokenTree::Punct(hash), TokenTree::Group(attr)] => {
            let words: Vec<String> = attr.stream().into_iter().map(|t| t.to_string()).collect();
            hash.as_char() == '#'
                && attr.delimiter() == Delimiter::Bracket
                && words.last().is_some_and(|w| w == "test")
                && words
                    .iter()
                    .all(|w| w == ":" || w.chars().all(|c| c.is_alphanumeric() || c == '_'))
        }
        _ => false,
    })
}

fn parse(code: &str) -> TokenStream {
    code.parse().expect("aio-macros writes valid Rust")
}

fn paren(inner: TokenStream) -> TokenTree {
    TokenTree::Group(Group::new(Delimiter::Parenthesis, inner))
}

fn punct(c: char) -> TokenTree {
    TokenTree::Punct(Punct::new(c, Spacing::Alone))
}

fn compile_error(span: Span, message: &str) -> TokenStream {
    let mut call = TokenStream::new();
    let mut ident = Ident::new("compile_error", span);
    ident.set_span(span);
    call.extend([TokenTree::Ident(ident)]);
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    call.extend([TokenTree::Punct(bang)]);
    let literal = proc_macro::Literal::string(message);
    let mut group = Group::new(
        Delimiter::Parenthesis,
        TokenStream::from(TokenTree::Literal(literal)),
    );
    group.set_span(span);
    call.extend([TokenTree::Group(group), punct(';')]);
    call
}
