//! AWS wire protocols, independent of any one service.
//!
//! * [`target`]: which service and operation an `X-Amz-Target` names.
//! * [`json`]: AWS JSON 1.0/1.1 bodies and error bodies.
//! * [`query`]: the query protocol's form bodies and XML errors.
//! * [`query_form`]: a decoded query form as a nested view (`Name.member.N`
//!   lists, sub-structures, scalars, Marker paging), shared by ELBv2 and IAM.
//! * [`ServiceError`]: what every service's error enum implements so the
//!   front door can render it in the right protocol.

pub mod json;
pub mod query;
pub mod query_form;
pub mod target;
pub mod xml_writer;

/// An error a service returns to a client. Each variant of a service's error
/// enum maps to exactly one AWS exception name.
pub trait ServiceError: std::fmt::Display {
    /// The AWS exception name, e.g. `ClusterNotFoundException`.
    fn code(&self) -> &'static str;
    /// 400 for client faults (the default), 500 for server faults.
    fn status(&self) -> u16 {
        400
    }
    fn message(&self) -> String {
        self.to_string()
    }
}

/// A request id in AWS's shape (a random UUID v4).
pub fn new_request_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Version 4, variant 10xx.
    let v = (b[6] & 0x0f) | 0x40;
    let var = (b[8] & 0x3f) | 0x80;
    format!(
        "{}-{}-{:02x}{:02x}-{:02x}{:02x}-{}",
        hex(0..4),
        hex(4..6),
        v,
        b[7],
        var,
        b[9],
        hex(10..16)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_id_has_uuid_shape() {
        let id = super::new_request_id();
        let parts: Vec<_> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, super::new_request_id());
    }
}
