//! Errors turned into text, for the few places where an error travels on as
//! a message (a reason field, a line of progress) rather than as a source.

/// The error with its causes, `: `-separated (reqwest hides the useful part
/// in the source chain; errors that travel on as text keep their causes).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
