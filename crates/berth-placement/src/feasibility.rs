//! Feasibility: may this instance take one more task of the request? The
//! checks run in ECS's order — resources (CPU, memory, ports), then
//! constraints (`memberOf`, then `distinctInstance`) — and the first that
//! fails is the reason RunTask reports for the instance.
//!
//! Status and agent connection are checked once, when the snapshot is
//! built: only ACTIVE instances with a connected agent are candidates, and
//! ACTIVE ones with a disconnected agent are reported as `AGENT`.

use crate::bound::BoundExpr;
use crate::model::Protocol;
use crate::overlay::{Delta, Overlay, proto_index};
use crate::plan::FailureReason;
use crate::request::{PlacementRequest, duplicate_static_port};
use crate::snapshot::{ClusterSnapshot, CpuMem};

/// What one task of a request needs, precomputed per request.
#[derive(Debug)]
pub(crate) struct Needs {
    pub(crate) cpu: u32,
    pub(crate) mem: u32,
    /// Fixed host ports per protocol (tcp, udp).
    static_ports: [Vec<u16>; 2],
    /// Dynamic ports per protocol.
    pub(crate) dynamic: [u32; 2],
    /// The task maps one fixed host port twice: it fits nowhere.
    ports_impossible: bool,
    has_ports: bool,
}

impl Needs {
    pub(crate) fn new(req: &PlacementRequest) -> Needs {
        let mut needs = Needs {
            cpu: req.cpu,
            mem: req.memory,
            static_ports: [Vec::new(), Vec::new()],
            dynamic: [0, 0],
            ports_impossible: duplicate_static_port(&req.ports).is_some(),
            has_ports: !req.ports.is_empty(),
        };
        for p in &req.ports {
            let k = proto_index(p.protocol);
            match p.static_port() {
                Some(port) => needs.static_ports[k].push(port),
                None => needs.dynamic[k] += 1,
            }
        }
        needs
    }
}

impl Needs {
    /// No ports: CPU and memory are the only resources to check.
    pub(crate) fn only_resources(&self) -> bool {
        !self.has_ports
    }
}

/// The per-request constraint state the checks read.
pub(crate) struct Constraints<'p> {
    pub(crate) member_of: &'p [&'p BoundExpr],
    /// For `distinctInstance`: tasks of the request's group per instance,
    /// placements included.
    pub(crate) distinct: Option<&'p [u32]>,
    /// Names of request-local groups (ids past the snapshot's).
    pub(crate) local_names: &'p [String],
}

impl Constraints<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.member_of.is_empty() && self.distinct.is_none()
    }
}

/// CPU and memory left on an instance after one more task.
pub(crate) type Left = CpuMem;

/// What instance `i` has: its remaining resources less what placements
/// took.
#[inline(always)]
pub(crate) fn have(snap: &ClusterSnapshot, overlay: &Overlay, i: usize) -> CpuMem {
    available(snap.hot[i].remaining, overlay.taken()[i])
}

#[inline(always)]
pub(crate) fn available(remaining: CpuMem, taken: CpuMem) -> CpuMem {
    CpuMem {
        cpu: remaining.cpu.saturating_sub(taken.cpu),
        mem: remaining.mem.saturating_sub(taken.mem),
    }
}

/// CPU filter: what is left after the task.
#[inline(always)]
pub(crate) fn cpu(have: u32, needs: &Needs) -> Result<u32, FailureReason> {
    have.checked_sub(needs.cpu)
        .ok_or(FailureReason::ResourceCpu)
}

/// Memory filter: what is left after the task.
#[inline(always)]
pub(crate) fn memory(have: u32, needs: &Needs) -> Result<u32, FailureReason> {
    have.checked_sub(needs.mem)
        .ok_or(FailureReason::ResourceMemory)
}

/// Ports filter: every fixed host port free, and enough of the dynamic
/// range free for the dynamic ones.
#[inline(always)]
pub(crate) fn ports(
    snap: &ClusterSnapshot,
    i: usize,
    d: Option<&Delta>,
    needs: &Needs,
) -> Result<(), FailureReason> {
    if !needs.has_ports {
        return Ok(());
    }
    if needs.ports_impossible {
        return Err(FailureReason::ResourcePorts);
    }
    for proto in [Protocol::Tcp, Protocol::Udp] {
        let k = proto_index(proto);
        let table = snap.ports(proto);
        for &port in &needs.static_ports[k] {
            if table.is_taken(i, port) || d.is_some_and(|d| d.is_taken(proto, port)) {
                return Err(FailureReason::ResourcePorts);
            }
        }
        if needs.dynamic[k] > 0 {
            // Fixed ports of the task inside this instance's dynamic range
            // (each instance may have its own) are not free for it.
            let static_in_range = needs.static_ports[k]
                .iter()
                .filter(|&&port| snap.in_dynamic_range(i, port))
                .count() as u32;
            let used = table.in_range[i] + d.map_or(0, |d| d.in_range(proto)) + static_in_range;
            if snap.dynamic_range_len(i).saturating_sub(used) < needs.dynamic[k] {
                return Err(FailureReason::ResourcePorts);
            }
        }
    }
    Ok(())
}

/// memberOf filter: every expression holds (placements made so far count
/// for `runningTasksCount` and `task:group`).
#[inline(always)]
pub(crate) fn member_of(
    snap: &ClusterSnapshot,
    i: usize,
    d: Option<&Delta>,
    c: &Constraints<'_>,
) -> Result<(), FailureReason> {
    let added = d.map(Delta::added);
    if c.member_of
        .iter()
        .all(|e| e.holds(snap, i, added, c.local_names))
    {
        Ok(())
    } else {
        Err(FailureReason::MemberOf)
    }
}

/// distinctInstance filter: no task of the group on the instance yet.
#[inline(always)]
pub(crate) fn distinct_instance(i: usize, c: &Constraints<'_>) -> Result<(), FailureReason> {
    match c.distinct {
        Some(counts) if counts[i] > 0 => Err(FailureReason::DistinctInstance),
        _ => Ok(()),
    }
}

/// All filters in order. On success, what the instance has left after the
/// task (for binpack).
#[inline(always)]
pub(crate) fn check(
    snap: &ClusterSnapshot,
    i: usize,
    have: CpuMem,
    overlay: &Overlay,
    needs: &Needs,
    c: &Constraints<'_>,
) -> Result<Left, FailureReason> {
    let cpu = cpu(have.cpu, needs)?;
    let mem = memory(have.mem, needs)?;
    if needs.has_ports {
        ports(snap, i, overlay.get(i), needs)?;
    }
    if !c.member_of.is_empty() {
        member_of(snap, i, overlay.get(i), c)?;
    }
    distinct_instance(i, c)?;
    Ok(Left { cpu, mem })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InstanceView;
    use crate::request::PortNeed;

    fn snap() -> ClusterSnapshot {
        let mut a = InstanceView::new("a", 1024, 2048)
            .with_attribute("ecs.instance-type", "t2.small")
            .with_task("web", "service:web");
        a.remaining.ports_tcp.extend([22, 80]);
        a.remaining.ports_udp.insert(53);
        ClusterSnapshot::with_dynamic_port_range(vec![a], 50000..=50003)
    }

    fn none<'a>() -> Constraints<'a> {
        Constraints {
            member_of: &[],
            distinct: None,
            local_names: &[],
        }
    }

    fn req(cpu: u32, mem: u32, ports: Vec<PortNeed>) -> PlacementRequest {
        let mut r = PlacementRequest::new("web", cpu, mem);
        r.ports = ports;
        r
    }

    #[test]
    fn cpu_filter() {
        let s = snap();
        assert_eq!(cpu(1024, &Needs::new(&req(1024, 1, vec![]))), Ok(0));
        assert_eq!(
            cpu(1024, &Needs::new(&req(1025, 1, vec![]))),
            Err(FailureReason::ResourceCpu)
        );
        assert_eq!(
            cpu(24, &Needs::new(&req(25, 1, vec![]))),
            Err(FailureReason::ResourceCpu)
        );
        assert_eq!(cpu(24, &Needs::new(&req(20, 1, vec![]))), Ok(4));
        // Placements taking more than remains leave nothing, never wrap.
        let mut ov = Overlay::new(1);
        ov.take_resources(0, 5000, 5000);
        assert_eq!(have(&s, &ov, 0), CpuMem { cpu: 0, mem: 0 });
        assert_eq!(
            cpu(have(&s, &ov, 0).cpu, &Needs::new(&req(0, 1, vec![]))),
            Ok(0)
        );
    }

    #[test]
    fn memory_filter() {
        let s = snap();
        assert_eq!(memory(2048, &Needs::new(&req(0, 2048, vec![]))), Ok(0));
        assert_eq!(
            memory(2048, &Needs::new(&req(0, 2049, vec![]))),
            Err(FailureReason::ResourceMemory)
        );
        let mut ov = Overlay::new(1);
        ov.take_resources(0, 0, 2000);
        assert_eq!(have(&s, &ov, 0), CpuMem { cpu: 1024, mem: 48 });
        assert_eq!(
            memory(48, &Needs::new(&req(0, 49, vec![]))),
            Err(FailureReason::ResourceMemory)
        );
    }

    #[test]
    fn ports_filter_static_and_dynamic() {
        let s = snap();
        let check_ports = |ports: Vec<PortNeed>, d: Option<&Delta>| ports_result(&s, ports, d);
        assert_eq!(
            check_ports(vec![PortNeed::fixed(8080, Protocol::Tcp)], None),
            Ok(())
        );
        assert_eq!(
            check_ports(vec![PortNeed::fixed(80, Protocol::Tcp)], None),
            Err(FailureReason::ResourcePorts)
        );
        // Taken for tcp, free for udp, and the other way round.
        assert_eq!(
            check_ports(vec![PortNeed::fixed(80, Protocol::Udp)], None),
            Ok(())
        );
        assert_eq!(
            check_ports(vec![PortNeed::fixed(53, Protocol::Udp)], None),
            Err(FailureReason::ResourcePorts)
        );
        // The same fixed port twice in one task never fits.
        assert_eq!(
            check_ports(
                vec![
                    PortNeed::fixed(9000, Protocol::Tcp),
                    PortNeed::fixed(9000, Protocol::Tcp)
                ],
                None
            ),
            Err(FailureReason::ResourcePorts)
        );
        // Four dynamic ports in range; a fifth does not fit.
        let four = vec![PortNeed::dynamic(Protocol::Tcp); 4];
        assert_eq!(check_ports(four.clone(), None), Ok(()));
        let mut five = four.clone();
        five.push(PortNeed::dynamic(Protocol::Tcp));
        assert_eq!(check_ports(five, None), Err(FailureReason::ResourcePorts));
        // A fixed port inside the range uses one of them.
        let mut mixed = four.clone();
        mixed.push(PortNeed::fixed(50001, Protocol::Tcp));
        assert_eq!(check_ports(mixed, None), Err(FailureReason::ResourcePorts));
        // Ports placed earlier count.
        let mut d = Delta::default();
        d.take_port(Protocol::Tcp, 8080, false);
        d.take_port(Protocol::Tcp, 50000, true);
        assert_eq!(
            check_ports(vec![PortNeed::fixed(8080, Protocol::Tcp)], Some(&d)),
            Err(FailureReason::ResourcePorts)
        );
        assert_eq!(
            check_ports(four, Some(&d)),
            Err(FailureReason::ResourcePorts)
        );
        assert_eq!(
            check_ports(vec![PortNeed::dynamic(Protocol::Udp); 4], Some(&d)),
            Ok(())
        );
    }

    fn ports_result(
        s: &ClusterSnapshot,
        ports: Vec<PortNeed>,
        d: Option<&Delta>,
    ) -> Result<(), FailureReason> {
        super::ports(s, 0, d, &Needs::new(&req(0, 0, ports)))
    }

    #[test]
    fn member_of_filter() {
        let s = snap();
        let yes = BoundExpr::bind(
            crate::query::parse("attribute:ecs.instance-type =~ t2.*")
                .as_ref()
                .unwrap(),
            &s,
        );
        let no = BoundExpr::bind(
            crate::query::parse("attribute:ecs.instance-type == m5.large")
                .as_ref()
                .unwrap(),
            &s,
        );
        let one = [&yes];
        let both = [&yes, &no];
        let c = |m| Constraints {
            member_of: m,
            distinct: None,
            local_names: &[],
        };
        assert_eq!(member_of(&s, 0, None, &c(&one)), Ok(()));
        assert_eq!(
            member_of(&s, 0, None, &c(&both)),
            Err(FailureReason::MemberOf)
        );
        // Dynamic subjects see placements.
        let empty = BoundExpr::bind(
            crate::query::parse("runningTasksCount <= 1")
                .as_ref()
                .unwrap(),
            &s,
        );
        let dyn_one = [&empty];
        assert_eq!(member_of(&s, 0, None, &c(&dyn_one)), Ok(()));
        let mut d = Delta::default();
        d.add_task(0);
        assert_eq!(
            member_of(&s, 0, Some(&d), &c(&dyn_one)),
            Err(FailureReason::MemberOf)
        );
    }

    #[test]
    fn distinct_instance_filter() {
        let counts = [0u32, 2];
        let c = Constraints {
            member_of: &[],
            distinct: Some(&counts),
            local_names: &[],
        };
        assert_eq!(distinct_instance(0, &c), Ok(()));
        assert_eq!(
            distinct_instance(1, &c),
            Err(FailureReason::DistinctInstance)
        );
        assert_eq!(distinct_instance(1, &none()), Ok(()));
    }

    #[test]
    fn check_reports_the_first_failing_filter_in_order() {
        let s = snap();
        let counts = [1u32];
        let no = BoundExpr::bind(
            crate::query::parse("attribute:x exists").as_ref().unwrap(),
            &s,
        );
        let m = [&no];
        let c = Constraints {
            member_of: &m,
            distinct: Some(&counts),
            local_names: &[],
        };
        let ports80 = vec![PortNeed::fixed(80, Protocol::Tcp)];
        let ov = Overlay::new(1);
        let h = have(&s, &ov, 0);
        let r = |cpu, mem, ports: &Vec<PortNeed>| {
            check(
                &s,
                0,
                h,
                &ov,
                &Needs::new(&req(cpu, mem, ports.clone())),
                &c,
            )
        };
        assert_eq!(r(5000, 5000, &ports80), Err(FailureReason::ResourceCpu));
        assert_eq!(r(1, 5000, &ports80), Err(FailureReason::ResourceMemory));
        assert_eq!(r(1, 1, &ports80), Err(FailureReason::ResourcePorts));
        assert_eq!(r(1, 1, &vec![]), Err(FailureReason::MemberOf));
        let c2 = Constraints {
            member_of: &[],
            distinct: Some(&counts),
            local_names: &[],
        };
        assert_eq!(
            check(&s, 0, h, &ov, &Needs::new(&req(1, 1, vec![])), &c2),
            Err(FailureReason::DistinctInstance)
        );
        assert_eq!(
            check(&s, 0, h, &ov, &Needs::new(&req(24, 48, vec![])), &none()),
            Ok(Left {
                cpu: 1000,
                mem: 2000
            })
        );
        let mut ov = Overlay::new(1);
        ov.take_resources(0, 1000, 0);
        assert_eq!(
            check(
                &s,
                0,
                have(&s, &ov, 0),
                &ov,
                &Needs::new(&req(25, 48, vec![])),
                &none()
            ),
            Err(FailureReason::ResourceCpu)
        );
    }
}
