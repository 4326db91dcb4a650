//! What placements made so far add to the snapshot, per instance touched.
//! The snapshot is never copied: an instance's state is its snapshot row
//! plus its delta here, if any.

use crate::bound::Added;
use crate::model::Protocol;
use crate::snapshot::CpuMem;

/// Ports, tasks and groups added to one instance (CPU and memory live in
/// the overlay's dense arrays, which the hot scan reads).
#[derive(Debug, Default)]
pub(crate) struct Delta {
    /// Host ports taken by placed tasks, sorted, per protocol (tcp, udp).
    ports: [Vec<u16>; 2],
    /// How many of `ports` lie in the dynamic range, per protocol.
    in_range: [u32; 2],
    pub(crate) tasks: u32,
    /// `(group id, count)`, by first placement.
    pub(crate) groups: Vec<(u32, u32)>,
}

#[inline]
pub(crate) fn proto_index(p: Protocol) -> usize {
    match p {
        Protocol::Tcp => 0,
        Protocol::Udp => 1,
    }
}

impl Delta {
    #[inline]
    pub(crate) fn taken(&self, p: Protocol) -> &[u16] {
        &self.ports[proto_index(p)]
    }

    #[inline]
    pub(crate) fn in_range(&self, p: Protocol) -> u32 {
        self.in_range[proto_index(p)]
    }

    #[inline]
    pub(crate) fn is_taken(&self, p: Protocol, port: u16) -> bool {
        self.taken(p).binary_search(&port).is_ok()
    }

    /// Records `port` as taken. Returns false if it already was.
    pub(crate) fn take_port(&mut self, p: Protocol, port: u16, in_dynamic_range: bool) -> bool {
        let list = &mut self.ports[proto_index(p)];
        match list.binary_search(&port) {
            Ok(_) => false,
            Err(at) => {
                list.insert(at, port);
                if in_dynamic_range {
                    self.in_range[proto_index(p)] += 1;
                }
                true
            }
        }
    }

    pub(crate) fn add_task(&mut self, gid: u32) {
        self.tasks += 1;
        match self.groups.iter_mut().find(|(g, _)| *g == gid) {
            Some((_, n)) => *n += 1,
            None => self.groups.push((gid, 1)),
        }
    }

    pub(crate) fn added(&self) -> Added<'_> {
        Added {
            tasks: self.tasks,
            groups: &self.groups,
        }
    }
}

/// Deltas keyed by instance index. CPU and memory taken are dense arrays
/// (zero-allocated, so creating an overlay costs next to nothing), read by
/// every candidate of every scan; the rest sits in a [`Delta`] per touched
/// instance, reached through a dense slot table and read only when a
/// request has ports or dynamic constraints.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    taken: Vec<CpuMem>,
    /// 0: untouched; `s + 1`: `deltas[s]`.
    slot: Vec<u32>,
    /// `(instance, delta)` in order of first touch.
    deltas: Vec<(u32, Delta)>,
}

impl Overlay {
    pub(crate) fn new(n: usize) -> Overlay {
        Overlay {
            taken: vec![CpuMem::default(); n],
            slot: vec![0; n],
            deltas: Vec::new(),
        }
    }

    /// CPU and memory taken, per instance.
    #[inline(always)]
    pub(crate) fn taken(&self) -> &[CpuMem] {
        &self.taken
    }

    #[inline(always)]
    pub(crate) fn cpu(&self, i: usize) -> u32 {
        self.taken[i].cpu
    }

    #[inline(always)]
    pub(crate) fn mem(&self, i: usize) -> u32 {
        self.taken[i].mem
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&Delta> {
        match self.slot[i] {
            0 => None,
            s => Some(&self.deltas[s as usize - 1].1),
        }
    }

    /// Takes CPU and memory on instance `i`.
    pub(crate) fn take_resources(&mut self, i: usize, cpu: u32, mem: u32) {
        let t = &mut self.taken[i];
        t.cpu = t.cpu.saturating_add(cpu);
        t.mem = t.mem.saturating_add(mem);
    }

    /// The delta of instance `i`, created empty if untouched.
    pub(crate) fn entry(&mut self, i: usize) -> &mut Delta {
        if self.slot[i] == 0 {
            self.deltas.push((i as u32, Delta::default()));
            self.slot[i] = self.deltas.len() as u32;
        }
        let s = self.slot[i] as usize - 1;
        &mut self.deltas[s].1
    }

    /// Every touched instance with its delta.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Delta)> {
        self.deltas.iter().map(|(i, d)| (*i as usize, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_tracks_ports_and_groups() {
        let mut d = Delta::default();
        assert!(d.take_port(Protocol::Tcp, 50000, true));
        assert!(d.take_port(Protocol::Tcp, 80, false));
        assert!(!d.take_port(Protocol::Tcp, 80, false));
        assert_eq!(d.taken(Protocol::Tcp), &[80, 50000]);
        assert_eq!(d.in_range(Protocol::Tcp), 1);
        assert!(d.taken(Protocol::Udp).is_empty());
        d.add_task(3);
        d.add_task(3);
        d.add_task(1);
        assert_eq!(d.tasks, 3);
        assert_eq!(d.groups, vec![(3, 2), (1, 1)]);
    }

    #[test]
    fn overlay_is_sparse_until_touched() {
        let mut o = Overlay::new(10);
        assert!(o.get(5).is_none());
        o.take_resources(5, 7, 70);
        o.take_resources(5, 1, 10);
        assert_eq!((o.cpu(5), o.mem(5), o.cpu(4)), (8, 80, 0));
        assert!(o.get(5).is_none(), "resources alone need no delta");
        o.entry(5).add_task(0);
        o.entry(5).add_task(0);
        assert_eq!(o.get(5).map(|d| d.tasks), Some(2));
        assert!(o.get(4).is_none());
        assert_eq!(o.iter().count(), 1);
    }
}
