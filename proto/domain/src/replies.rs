//! The texts a submitter reads back, in Spark's words, written once for every front end
//! (gRPC, Spark's RPC client, Spark's REST server): Spark's own clients print them as they
//! are, and users grep their logs for them.

use std::fmt::Display;

/// `CreateSubmissionResponse.message`, `SubmitDriverResponse.message`.
pub fn driver_submitted(id: impl Display) -> String {
    format!("Driver successfully submitted as {id}")
}

/// A kill that was accepted (drivers and applications alike).
pub fn kill_submitted(id: impl Display) -> String {
    format!("Kill request for {id} submitted")
}

/// A kill of a driver the master no longer runs.
pub fn driver_gone(id: impl Display) -> String {
    format!("Driver {id} has already finished or does not exist")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparks_wording() {
        assert_eq!(
            driver_submitted("driver-1"),
            "Driver successfully submitted as driver-1"
        );
        assert_eq!(kill_submitted("app-1"), "Kill request for app-1 submitted");
        assert_eq!(
            driver_gone("driver-2"),
            "Driver driver-2 has already finished or does not exist"
        );
    }
}
