//! One error story for every crate of recaudo: each library error answers *whose* it is
//! ([`Blame`]: the caller's data, an external system, or ours) and *whether trying again
//! unchanged can help* ([`RetryHint`]), through the [`Fault`] trait. The job runner
//! retries on that answer alone, the API maps it to 4xx/503/500, and people are told what
//! to do — no caller needs to know the concrete error types under it.
//!
//! The model is Arroyo's `ErrorDomain` + `RetryHint`.

use std::error::Error;
use std::fmt;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The input or the request is wrong: whoever sent it must fix it.
    User,
    /// A system we depend on (the database, S3, Kafka) failed or was unreachable.
    External,
    /// A bug of ours or a broken invariant.
    Internal,
}

impl Blame {
    pub fn as_str(&self) -> &'static str {
        match self {
            Blame::User => "user",
            Blame::External => "external",
            Blame::Internal => "internal",
        }
    }
}

impl fmt::Display for Blame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the same call, unchanged, may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryHint {
    /// Try again after a while: the cause is transient (unreachable, throttled, busy).
    Retry,
    /// Trying again changes nothing until someone changes something.
    Never,
}

/// An error that knows whose it is. `retry` follows from `blame` unless an error says
/// otherwise (an external system that refused for good, say).
pub trait Fault: Error + Send + Sync + 'static {
    fn blame(&self) -> Blame;

    fn retry(&self) -> RetryHint {
        self.blame().into()
    }
}

/// What usually follows from whose an error is: only an external system's may pass.
impl From<Blame> for RetryHint {
    fn from(blame: Blame) -> RetryHint {
        match blame {
            Blame::External => RetryHint::Retry,
            Blame::User | Blame::Internal => RetryHint::Never,
        }
    }
}

/// An error's message followed by its causes, `: `-separated, for one-line reports.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        // thiserror's `#[error("…: {0}")]` already shows its source; skip repeats.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Down;
    impl fmt::Display for Down {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connection refused")
        }
    }
    impl Error for Down {}
    impl Fault for Down {
        fn blame(&self) -> Blame {
            Blame::External
        }
    }

    #[derive(Debug)]
    struct Wrapped(Down);
    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("opening the store")
        }
    }
    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn external_faults_are_worth_a_retry_and_the_others_are_not() {
        assert_eq!(Down.retry(), RetryHint::Retry);
        let boxed: Box<dyn Fault> = Box::new(Down);
        assert_eq!(boxed.blame(), Blame::External);
        assert_eq!(
            chain(&Wrapped(Down)),
            "opening the store: connection refused"
        );
    }
}
