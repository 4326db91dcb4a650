//! Task-level `cpu` and `memory`. ECS accepts them as strings in units
//! (`"1024"`, MiB / CPU units) or with a unit (`"1 vCPU"`, `"0.25 vcpu"`,
//! `"2 GB"`, `"1GB"`) and echoes them back converted to plain units, so
//! `"1 vCPU"` is described as `"1024"`.

use crate::error::{EcsError, EcsResult};

/// The task size after normalisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskSize {
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
}

/// ECS's documented bounds for task-level cpu on EC2 (0.125 to 192 vCPU);
/// Fargate's sizes all fall inside them.
const MIN_TASK_CPU: u64 = 128;
const MAX_TASK_CPU: u64 = 196_608;
/// Docker refuses containers below 6 MiB, so a smaller task could run nothing.
const MIN_TASK_MEMORY: u64 = 6;
/// Far above any instance; keeps the value inside ECS's Integer range.
const MAX_TASK_MEMORY: u64 = i32::MAX as u64;

pub fn parse(cpu: Option<&str>, memory: Option<&str>) -> EcsResult<TaskSize> {
    let cpu = cpu.map(parse_cpu).transpose()?;
    let memory = memory.map(parse_memory).transpose()?;
    Ok(TaskSize { cpu, memory })
}

pub fn parse_cpu(text: &str) -> EcsResult<u32> {
    // A malformed value is InvalidParameterException in ECS (observed for
    // `cpu: ""`); a well-formed value out of range is a ClientException.
    let units = with_unit(text, "vcpu", 1024)
        .ok_or_else(|| EcsError::invalid("Invalid 'cpu' setting for task."))?;
    if !(MIN_TASK_CPU..=MAX_TASK_CPU).contains(&units) {
        return Err(EcsError::client(
            "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        ));
    }
    Ok(units as u32)
}

pub fn parse_memory(text: &str) -> EcsResult<u32> {
    let mib = with_unit(text, "gb", 1024)
        .ok_or_else(|| EcsError::invalid("Invalid 'memory' setting for task."))?;
    if !(MIN_TASK_MEMORY..=MAX_TASK_MEMORY).contains(&mib) {
        return Err(EcsError::client(
            "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        ));
    }
    Ok(mib as u32)
}

/// `text` as a whole number of base units: either plain digits, or a decimal
/// followed by `unit` (case-insensitive, optional space) meaning `factor`
/// base units each. Fractions must come out whole (`0.25 vCPU` is 256;
/// `0.1 vCPU` is refused).
fn with_unit(text: &str, unit: &str, factor: u64) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    match t.strip_suffix(unit) {
        Some(number) => decimal_times(number.trim_end(), factor),
        None => whole(&t),
    }
}

fn whole(digits: &str) -> Option<u64> {
    // Bounded length keeps the arithmetic far from overflow.
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn decimal_times(number: &str, factor: u64) -> Option<u64> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.len() > 6 || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let int = whole(int)?;
    let frac_value = if frac.is_empty() { 0 } else { whole(frac)? };
    let scale = 10u64.pow(frac.len() as u32);
    let scaled = int
        .checked_mul(scale)?
        .checked_add(frac_value)?
        .checked_mul(factor)?;
    (scaled % scale == 0).then_some(scaled / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(parse_cpu("1024").unwrap(), 1024);
        assert_eq!(parse_cpu("1 vCPU").unwrap(), 1024);
        assert_eq!(parse_cpu("1vcpu").unwrap(), 1024);
        assert_eq!(parse_cpu(" 0.25 vCPU ").unwrap(), 256);
        assert_eq!(parse_cpu("0.5 VCPU").unwrap(), 512);
        assert_eq!(parse_cpu("16 vCPU").unwrap(), 16384);
        assert!(matches!(parse_cpu(""), Err(EcsError::InvalidParameter(_))));
        assert!(matches!(
            parse_cpu("abc"),
            Err(EcsError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse_cpu("0.1 vCPU"),
            Err(EcsError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse_cpu("1. vCPU"),
            Err(EcsError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse_cpu("-1"),
            Err(EcsError::InvalidParameter(_))
        ));
        assert!(matches!(parse_cpu("64"), Err(EcsError::Client(_))));
        assert!(matches!(
            parse_cpu("999999999999"),
            Err(EcsError::Client(_))
        ));
        assert!(matches!(
            parse_cpu("9999999999999999999999"),
            Err(EcsError::InvalidParameter(_))
        ));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory("2048").unwrap(), 2048);
        assert_eq!(parse_memory("2 GB").unwrap(), 2048);
        assert_eq!(parse_memory("1GB").unwrap(), 1024);
        assert_eq!(parse_memory("0.5 gb").unwrap(), 512);
        assert!(matches!(
            parse_memory("2 MB"),
            Err(EcsError::InvalidParameter(_))
        ));
        assert!(matches!(parse_memory("4"), Err(EcsError::Client(_))));
    }
}
