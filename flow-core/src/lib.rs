//! The flowkit engine: flows, helper calls, stream-to-helper, steps, retries, schedules and
//! flow history.
