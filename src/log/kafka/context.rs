//! What librdkafka tells Eddy besides answers: its log lines go to `tracing` (target
//! `librdkafka`, at debug level: a broker restarting is routine, and the log says so itself),
//! and the errors it reports are kept, so that a connection that fails can say why (a refused
//! password, a certificate that does not verify) instead of "transport failure".

use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Shared by every librdkafka handle of one log.
#[derive(Clone, Default)]
pub(super) struct Context {
    errors: Arc<Mutex<Errors>>,
}

#[derive(Default)]
struct Errors {
    /// The last error librdkafka reported.
    last: Option<String>,
    /// The last one no retry can cure: authentication refused, TLS that does not verify.
    refusal: Option<String>,
}

impl Context {
    /// The last error librdkafka reported, if any.
    pub(super) fn last_error(&self) -> Option<String> {
        self.lock().last.clone()
    }

    /// An error that retrying will not cure, if librdkafka reported one.
    pub(super) fn refusal(&self) -> Option<String> {
        self.lock().refusal.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Errors> {
        self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether an error reported by librdkafka means the cluster refuses this client as it is
/// configured (retrying will not help).
fn is_refusal(code: Option<RDKafkaErrorCode>, reason: &str) -> bool {
    matches!(code, Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed))
        || reason.contains("SSL handshake failed")
        || reason.contains("certificate verify failed")
        || reason.contains("certificate required")
        || reason.contains("SASL")
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // A broker connection that failed says why only here (and not always to `error`).
        if facility == "FAIL" {
            let mut errors = self.lock();
            if is_refusal(None, message) {
                errors.refusal = Some(message.to_owned());
            }
            errors.last = Some(message.to_owned());
        }
        match level {
            RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{facility} {message}"),
            _ => tracing::debug!(target: "librdkafka", ?level, "{facility} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, reason);
        let mut errors = self.lock();
        if is_refusal(error.rdkafka_error_code(), reason) {
            errors.refusal = Some(reason.to_owned());
        }
        errors.last = Some(reason.to_owned());
    }
}

impl ConsumerContext for Context {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_from_trouble_that_passes() {
        let context = Context::default();
        context.error(KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure), "Disconnected");
        assert_eq!(context.refusal(), None);
        assert_eq!(context.last_error().as_deref(), Some("Disconnected"));
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: SASL SCRAM authentication failed: broker responded with unknown-user",
        );
        assert!(context.refusal().is_some_and(|r| r.contains("unknown-user")));
    }
}
