//! The flows bundled with flowkit: the User Status Report.
