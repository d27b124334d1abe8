//! What kind of failure an error is, as DataFusion tells a plan error from an internal one.
//!
//! Every layer's error says its [`ErrorKind`]; the edges map it: the command line to its exit
//! code ([`ErrorKind::exit_code`]), the REST API to its status and ksqlDB's error code
//! ([`ErrorKind::rest_status`]).
//!
//! Debug builds also carry fault points ([`fault_point`]): a test arms one
//! (`eddy --inject-fault NAME`, hidden, debug builds only) to see that a bug reached there is
//! reported as one.

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The statement or its input is wrong (a name, a type, a value): the user can fix it.
    User,
    /// Something outside Eddy failed (a broker, a registry, a database, the disk): trying again
    /// may succeed.
    External,
    /// Eddy itself is wrong (a panic caught, a state it never expects): "this is a bug".
    Internal,
}

impl ErrorKind {
    /// The command line's exit code: 1 for the user's mistakes, 2 for everything else.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::User => 1,
            ErrorKind::External | ErrorKind::Internal => 2,
        }
    }

    /// The REST API's HTTP status and ksqlDB's error code: 400/40001 (a bad statement),
    /// 503/50300 (a service Eddy depends on is unavailable), 500/50000 (a server error).
    pub fn rest_status(self) -> (u16, u32) {
        match self {
            ErrorKind::User => (400, 40001),
            ErrorKind::External => (503, 50300),
            ErrorKind::Internal => (500, 50000),
        }
    }
}

/// How an internal error's message begins.
pub const BUG: &str = "internal error (this is a bug)";

/// The message of an internal error: `internal error (this is a bug): …`.
pub fn bug_message(cause: &str) -> String {
    format!("{BUG}: {cause}")
}

/// What a caught panic said (its payload, when it is a message).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// The places a fault can be injected, by name.
pub const FAULT_POINTS: &[&str] = &["panic-in-planning"];

#[cfg(debug_assertions)]
static ARMED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Arms fault point `name` for the rest of the process (debug builds only; a release build
/// refuses). Unknown names are refused.
pub fn arm_fault(name: &str) -> Result<(), String> {
    if !FAULT_POINTS.contains(&name) {
        return Err(format!("unknown fault point '{name}': {}", FAULT_POINTS.join(", ")));
    }
    #[cfg(debug_assertions)]
    {
        let _ = ARMED.set(name.to_string());
        Ok(())
    }
    #[cfg(not(debug_assertions))]
    Err("faults are injected in debug builds only".into())
}

/// Panics here when fault point `name` is armed (never in a release build).
#[inline]
pub fn fault_point(name: &'static str) {
    #[cfg(debug_assertions)]
    if ARMED.get().is_some_and(|armed| armed == name) {
        panic!("fault injected at {name}");
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes_and_rest_statuses() {
        assert_eq!(ErrorKind::User.exit_code(), 1);
        assert_eq!(ErrorKind::External.exit_code(), 2);
        assert_eq!(ErrorKind::Internal.exit_code(), 2);
        assert_eq!(ErrorKind::User.rest_status(), (400, 40001));
        assert_eq!(ErrorKind::Internal.rest_status(), (500, 50000));
        assert_eq!(ErrorKind::External.rest_status(), (503, 50300));
    }

    #[test]
    fn unknown_fault_points_are_refused() {
        assert!(arm_fault("panic-everywhere").unwrap_err().contains("panic-in-planning"));
    }

    #[test]
    fn panic_messages_are_read_from_their_payloads() {
        let caught = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "at 3");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "unknown");
    }
}
