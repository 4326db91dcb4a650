//! The immutable cluster snapshot placement runs over, with the indexes
//! built once so that each placement is a tight scan over flat arrays.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::model::{ContainerInstanceId, InstanceStatus, InstanceView, Protocol};
use crate::rng;

/// The dynamic host-port range when the snapshot does not say otherwise.
///
/// The ECS agent (`ECS_DYNAMIC_HOST_PORT_RANGE`) uses the host's
/// `/proc/sys/net/ipv4/ip_local_port_range` and, when that is unavailable,
/// 49153–65535 on Linux — the documented fallback, and Docker's own default
/// since 1.6. Berth's agent reports its real range when it registers; the
/// snapshot builder passes it through [`ClusterSnapshot::with_dynamic_port_range`].
/// An instance whose [`InstanceView::dynamic_port_range`] is set uses that
/// range instead (its agent's `ECS_DYNAMIC_HOST_PORT_RANGE`).
pub const DEFAULT_DYNAMIC_PORT_RANGE: RangeInclusive<u16> = 49153..=65535;

/// CPU units and MiB: remaining, taken, left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuMem {
    pub(crate) cpu: u32,
    pub(crate) mem: u32,
}

/// What the hot scan reads per instance, side by side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) remaining: CpuMem,
    /// ACTIVE with a connected agent: a candidate.
    pub(crate) ready: bool,
}

/// Index value meaning "this instance has no such attribute".
pub(crate) const ABSENT: u32 = u32::MAX;

/// One string-valued property of every instance, dictionary-encoded.
#[derive(Debug, Default)]
pub(crate) struct Column {
    /// Distinct values; `None` is "present without a value".
    pub(crate) values: Vec<Option<String>>,
    /// Per instance: index into `values`, or [`ABSENT`].
    pub(crate) of: Vec<u32>,
    /// Per bucket (value id, then "absent"): the candidate (ready)
    /// instances, ascending. Lets a scan that spreads over this column
    /// visit the emptiest buckets first.
    pub(crate) ready_members: Vec<Vec<u32>>,
}

impl Column {
    fn build<'a>(n: usize, value_of: impl Fn(usize) -> Option<Option<&'a str>>) -> Column {
        let mut ids: HashMap<Option<&str>, u32> = HashMap::new();
        let mut col = Column {
            values: Vec::new(),
            of: Vec::with_capacity(n),
            ready_members: Vec::new(),
        };
        for i in 0..n {
            let id = match value_of(i) {
                None => ABSENT,
                Some(v) => *ids.entry(v).or_insert_with(|| {
                    col.values.push(v.map(str::to_owned));
                    (col.values.len() - 1) as u32
                }),
            };
            col.of.push(id);
        }
        col
    }

    fn index_ready(&mut self, ready: &[u32]) {
        self.ready_members = vec![Vec::new(); self.values.len() + 1];
        for &i in ready {
            let b = self.bucket(i as usize);
            self.ready_members[b].push(i);
        }
    }

    /// The bucket of instance `i` for counting: its value id, or
    /// `values.len()` for "absent".
    #[inline]
    pub(crate) fn bucket(&self, i: usize) -> usize {
        let v = self.of[i];
        if v == ABSENT {
            self.values.len()
        } else {
            v as usize
        }
    }
}

/// Taken host ports of one protocol, flattened: instance `i`'s sorted ports
/// are `ports[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Default)]
pub(crate) struct PortTable {
    offsets: Vec<u32>,
    ports: Vec<u16>,
    /// Per instance: how many taken ports lie in the dynamic range.
    pub(crate) in_range: Vec<u32>,
}

impl PortTable {
    #[inline]
    pub(crate) fn taken(&self, i: usize) -> &[u16] {
        &self.ports[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    #[inline]
    pub(crate) fn is_taken(&self, i: usize, port: u16) -> bool {
        self.taken(i).binary_search(&port).is_ok()
    }
}

/// Which instances run tasks of which group, both ways.
#[derive(Debug, Default)]
pub(crate) struct GroupIndex {
    pub(crate) ids: HashMap<String, u32>,
    pub(crate) names: Vec<String>,
    /// Instance `i`'s `(group, count)` pairs are
    /// `pairs[offsets[i]..offsets[i + 1]]`, sorted by group.
    offsets: Vec<u32>,
    pairs: Vec<(u32, u32)>,
    /// Per group: `(instance, count)` for every instance running it.
    pub(crate) instances_of: Vec<Vec<(u32, u32)>>,
}

impl GroupIndex {
    #[inline]
    pub(crate) fn of_instance(&self, i: usize) -> &[(u32, u32)] {
        &self.pairs[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// Every container instance of one cluster at one moment, with the indexes
/// placement needs. Build it once per scheduling round and share it (it is
/// `Send + Sync`; wrap it in an `Arc`) among all the placements of that
/// round.
///
/// Instances keep the order they were given in (the store lists them by
/// id); placement's random choices key instances by id, not position.
#[derive(Debug)]
pub struct ClusterSnapshot {
    instances: Vec<InstanceView>,
    by_id: HashMap<ContainerInstanceId, u32>,
    dynamic_ports: RangeInclusive<u16>,
    /// Per instance: the dynamic range in effect, `(lo, hi)` (its own, else
    /// `dynamic_ports`; `lo > hi` is empty).
    dynamic_ranges: Vec<(u16, u16)>,
    /// Remaining CPU / memory and candidacy per instance.
    pub(crate) hot: Vec<Hot>,
    /// ACTIVE instances with a connected agent: the candidates, ascending.
    pub(crate) ready: Vec<u32>,
    /// All ACTIVE instances, ascending (the ones failures are reported for).
    pub(crate) active: Vec<u32>,
    pub(crate) tcp: PortTable,
    pub(crate) udp: PortTable,
    /// Running (resource-holding) tasks per instance.
    pub(crate) task_count: Vec<u32>,
    /// Stable hash of each instance id.
    pub(crate) id_hash: Vec<u64>,
    /// Attribute name → column index in `columns`.
    pub(crate) attribute_ids: HashMap<String, u32>,
    pub(crate) columns: Vec<Column>,
    pub(crate) ec2_instance_id: Column,
    pub(crate) agent_version: Column,
    pub(crate) groups: GroupIndex,
}

impl ClusterSnapshot {
    /// Indexes `instances` with the default dynamic port range.
    pub fn new(instances: Vec<InstanceView>) -> Self {
        Self::with_dynamic_port_range(instances, DEFAULT_DYNAMIC_PORT_RANGE)
    }

    /// Indexes `instances`; dynamic host ports are allocated from `range`
    /// (an empty range means no dynamic ports can be given), or from an
    /// instance's own range where it has one.
    pub fn with_dynamic_port_range(
        instances: Vec<InstanceView>,
        range: RangeInclusive<u16>,
    ) -> Self {
        let n = instances.len();
        let mut by_id = HashMap::with_capacity(n);
        for (i, inst) in instances.iter().enumerate() {
            // With duplicate ids the first wins; ids are unique in a store.
            by_id.entry(inst.id.clone()).or_insert(i as u32);
        }
        let active: Vec<u32> = (0..n as u32)
            .filter(|&i| instances[i as usize].status == InstanceStatus::Active)
            .collect();
        let ready: Vec<u32> = active
            .iter()
            .copied()
            .filter(|&i| instances[i as usize].agent_connected)
            .collect();
        let mut hot: Vec<Hot> = instances
            .iter()
            .map(|i| Hot {
                remaining: CpuMem {
                    cpu: i.remaining.cpu,
                    mem: i.remaining.memory,
                },
                ready: false,
            })
            .collect();
        for &i in &ready {
            hot[i as usize].ready = true;
        }
        let dynamic_ranges: Vec<(u16, u16)> = instances
            .iter()
            .map(|i| {
                let r = i.dynamic_port_range.as_ref().unwrap_or(&range);
                (*r.start(), *r.end())
            })
            .collect();
        let tcp = port_table(&instances, Protocol::Tcp, &dynamic_ranges);
        let udp = port_table(&instances, Protocol::Udp, &dynamic_ranges);
        let task_count = instances
            .iter()
            .map(|i| i.running_tasks.len() as u32)
            .collect();
        let id_hash = instances
            .iter()
            .map(|i| rng::hash_str(i.id.as_str()))
            .collect();

        let mut attribute_ids: HashMap<String, u32> = HashMap::new();
        for inst in &instances {
            for name in inst.attributes.keys() {
                if !attribute_ids.contains_key(name) {
                    let id = attribute_ids.len() as u32;
                    attribute_ids.insert(name.clone(), id);
                }
            }
        }
        let mut names: Vec<(&String, u32)> = attribute_ids.iter().map(|(k, &v)| (k, v)).collect();
        names.sort_by_key(|&(_, id)| id);
        let columns = names
            .iter()
            .map(|(name, _)| {
                let mut col = Column::build(n, |i| instances[i].attribute(name));
                col.index_ready(&ready);
                col
            })
            .collect();
        let ec2_instance_id =
            Column::build(n, |i| instances[i].ec2_instance_id.as_deref().map(Some));
        let agent_version = Column::build(n, |i| instances[i].agent_version.as_deref().map(Some));
        let groups = group_index(&instances);

        ClusterSnapshot {
            by_id,
            dynamic_ports: range,
            dynamic_ranges,
            hot,
            ready,
            active,
            tcp,
            udp,
            task_count,
            id_hash,
            attribute_ids,
            columns,
            ec2_instance_id,
            agent_version,
            groups,
            instances,
        }
    }

    pub fn instances(&self) -> &[InstanceView] {
        &self.instances
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The position of an instance in [`Self::instances`].
    pub fn index_of(&self, id: &ContainerInstanceId) -> Option<usize> {
        self.by_id.get(id).map(|&i| i as usize)
    }

    pub fn instance(&self, id: &ContainerInstanceId) -> Option<&InstanceView> {
        self.index_of(id).map(|i| &self.instances[i])
    }

    /// The snapshot's dynamic range: the one instances without their own
    /// use.
    pub fn dynamic_port_range(&self) -> RangeInclusive<u16> {
        self.dynamic_ports.clone()
    }

    /// The dynamic range in effect on the instance at position `i` in
    /// [`Self::instances`]: its own, else the snapshot's.
    pub fn instance_dynamic_port_range(&self, i: usize) -> RangeInclusive<u16> {
        let (lo, hi) = self.dynamic_ranges[i];
        lo..=hi
    }

    /// Number of ports in instance `i`'s dynamic range.
    #[inline]
    pub(crate) fn dynamic_range_len(&self, i: usize) -> u32 {
        let (lo, hi) = self.dynamic_ranges[i];
        if lo > hi {
            0
        } else {
            u32::from(hi) - u32::from(lo) + 1
        }
    }

    /// Whether `port` lies in instance `i`'s dynamic range.
    #[inline]
    pub(crate) fn in_dynamic_range(&self, i: usize, port: u16) -> bool {
        let (lo, hi) = self.dynamic_ranges[i];
        lo <= port && port <= hi
    }

    #[inline]
    pub(crate) fn ports(&self, protocol: Protocol) -> &PortTable {
        match protocol {
            Protocol::Tcp => &self.tcp,
            Protocol::Udp => &self.udp,
        }
    }
}

fn port_table(instances: &[InstanceView], protocol: Protocol, ranges: &[(u16, u16)]) -> PortTable {
    let mut table = PortTable {
        offsets: Vec::with_capacity(instances.len() + 1),
        ..PortTable::default()
    };
    table.offsets.push(0);
    for (inst, &(lo, hi)) in instances.iter().zip(ranges) {
        let set = inst.remaining.ports(protocol);
        // BTreeSet iterates in order: the slice is sorted and unique.
        table.ports.extend(set.iter().copied());
        table.offsets.push(table.ports.len() as u32);
        let in_range = if lo > hi {
            0
        } else {
            set.range(lo..=hi).count()
        };
        table.in_range.push(in_range as u32);
    }
    table
}

fn group_index(instances: &[InstanceView]) -> GroupIndex {
    let mut index = GroupIndex {
        offsets: Vec::with_capacity(instances.len() + 1),
        ..GroupIndex::default()
    };
    index.offsets.push(0);
    let mut scratch: Vec<u32> = Vec::new();
    for (i, inst) in instances.iter().enumerate() {
        scratch.clear();
        for task in &inst.running_tasks {
            let gid = match index.ids.get(task.group.as_str()) {
                Some(&g) => g,
                None => {
                    let g = index.names.len() as u32;
                    index.ids.insert(task.group.clone(), g);
                    index.names.push(task.group.clone());
                    index.instances_of.push(Vec::new());
                    g
                }
            };
            scratch.push(gid);
        }
        scratch.sort_unstable();
        let mut k = 0;
        while k < scratch.len() {
            let g = scratch[k];
            let run = scratch[k..].iter().take_while(|&&x| x == g).count();
            index.pairs.push((g, run as u32));
            index.instances_of[g as usize].push((i as u32, run as u32));
            k += run;
        }
        index.offsets.push(index.pairs.len() as u32);
    }
    index
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotRepr {
    instances: Vec<InstanceView>,
    dynamic_port_range: (u16, u16),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotReprRef<'a> {
    instances: &'a [InstanceView],
    dynamic_port_range: (u16, u16),
}

/// Serialized as its instances and port range (indexes are rebuilt on
/// deserialization), so a scheduling round can be recorded and replayed.
impl Serialize for ClusterSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotReprRef {
            instances: &self.instances,
            dynamic_port_range: (*self.dynamic_ports.start(), *self.dynamic_ports.end()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ClusterSnapshot {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = SnapshotRepr::deserialize(d)?;
        let (lo, hi) = repr.dynamic_port_range;
        Ok(ClusterSnapshot::with_dynamic_port_range(
            repr.instances,
            lo..=hi,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_columns_ports_and_groups() {
        let mut a = InstanceView::new("a", 1024, 2048)
            .with_attribute("ecs.availability-zone", "az1")
            .with_task("web", "service:web")
            .with_task("web", "service:web")
            .with_task("db", "family:db");
        a.remaining.ports_tcp.extend([22, 80, 50000]);
        let mut b = InstanceView::new("b", 512, 512).with_attribute("ecs.availability-zone", "az2");
        b.attributes.insert("gpu".into(), None);
        b.agent_connected = false;
        let mut c = InstanceView::new("c", 512, 512).with_attribute("ecs.availability-zone", "az1");
        c.status = InstanceStatus::Draining;
        let snap = ClusterSnapshot::new(vec![a, b, c]);

        assert_eq!(snap.ready, vec![0]);
        assert_eq!(snap.active, vec![0, 1]);
        assert_eq!(snap.tcp.taken(0), &[22, 80, 50000]);
        assert_eq!(snap.tcp.in_range[0], 1);
        assert!(snap.tcp.is_taken(0, 80) && !snap.tcp.is_taken(0, 81));
        assert!(snap.udp.taken(0).is_empty());

        let az = &snap.columns[snap.attribute_ids["ecs.availability-zone"] as usize];
        assert_eq!(az.of[0], az.of[2]);
        assert_ne!(az.of[0], az.of[1]);
        let gpu = &snap.columns[snap.attribute_ids["gpu"] as usize];
        assert_eq!(gpu.of[0], ABSENT);
        assert_eq!(gpu.values[gpu.of[1] as usize], None);
        assert_eq!(gpu.bucket(0), gpu.values.len());
        assert_eq!(az.ready_members[az.bucket(0)], vec![0]);
        assert!(
            az.ready_members[az.bucket(1)].is_empty(),
            "b is disconnected"
        );
        assert_eq!(az.ready_members.len(), az.values.len() + 1);

        let web = snap.groups.ids["service:web"];
        assert_eq!(snap.groups.instances_of[web as usize], vec![(0, 2)]);
        assert_eq!(snap.groups.of_instance(0).len(), 2);
        assert_eq!(snap.task_count, vec![3, 0, 0]);
        assert_eq!(snap.index_of(&ContainerInstanceId::new("b")), Some(1));
    }

    #[test]
    fn serde_round_trip_rebuilds_indexes() {
        let snap = ClusterSnapshot::with_dynamic_port_range(
            vec![InstanceView::new("a", 1, 2).with_attribute("k", "v")],
            40000..=40010,
        );
        let json = serde_json::to_string(&snap).unwrap();
        let back: ClusterSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back.instances(), snap.instances());
        assert_eq!(back.dynamic_port_range(), 40000..=40010);
        assert_eq!(back.dynamic_range_len(0), 11);
        assert_eq!(back.ready, vec![0]);
    }

    #[test]
    fn per_instance_ranges_serialize_and_default() {
        let mut a = InstanceView::new("a", 1, 2).with_dynamic_port_range(50000..=50009);
        a.remaining.ports_tcp.extend([40000, 50000, 50001]);
        let mut b = InstanceView::new("b", 1, 2);
        b.remaining.ports_tcp.extend([40000, 50000]);
        let snap = ClusterSnapshot::with_dynamic_port_range(vec![a, b], 40000..=40010);
        assert_eq!(snap.tcp.in_range, vec![2, 1]);
        assert_eq!(
            (snap.dynamic_range_len(0), snap.dynamic_range_len(1)),
            (10, 11)
        );
        assert!(snap.in_dynamic_range(0, 50009) && !snap.in_dynamic_range(0, 40000));
        assert!(snap.in_dynamic_range(1, 40000) && !snap.in_dynamic_range(1, 50000));
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(
            json["instances"][0]["dynamicPortRange"],
            serde_json::json!({"start": 50000, "end": 50009})
        );
        assert!(json["instances"][1].get("dynamicPortRange").is_none());
        let back: ClusterSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back.instance_dynamic_port_range(0), 50000..=50009);
        assert_eq!(back.instance_dynamic_port_range(1), 40000..=40010);

        // An empty range (own or the snapshot's) gives no dynamic ports
        // and does not trip the port index.
        let (lo, hi) = (9, 8);
        let c = InstanceView::new("c", 1, 2).with_dynamic_port_range(lo..=hi);
        let mut d = InstanceView::new("d", 1, 2);
        d.remaining.ports_tcp.insert(7);
        let snap = ClusterSnapshot::with_dynamic_port_range(vec![c, d], lo..=hi);
        assert_eq!(
            (snap.dynamic_range_len(0), snap.dynamic_range_len(1)),
            (0, 0)
        );
        assert_eq!(snap.tcp.in_range, vec![0, 0]);
    }
}
