//! The faults a nemesis injects: their kinds (as named on the command
//! line), and choosing one concretely for a round (which member, which
//! links, how slow) from the run's random source. Choosing is pure;
//! `nemesis` applies the choice to a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;

/// A kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL a member (the leader more often than not), restart it from
    /// its data dir when healing.
    Kill,
    /// SIGKILL every member at once, restart them all when healing (a
    /// power cut: only what was fsynced survives).
    Crash,
    /// SIGSTOP the leader for longer than an election timeout, then
    /// SIGCONT.
    Pause,
    /// Split the members into a majority and a minority (the leader in the
    /// minority half of the time).
    Partition,
    /// Cut one member (the leader half of the time) off from all others.
    Isolate,
    /// Two halves that cannot see each other, both linked to one member in
    /// the middle.
    Bridge,
    /// Slow every link between members by its own delay.
    Delay,
    /// Stall the raft log commits (fsync) of some members: the leader, a
    /// majority, or all.
    SlowFsync,
}

impl FaultKind {
    /// Every kind, in the order a report lists them.
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Kill,
        FaultKind::Crash,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Bridge,
        FaultKind::Delay,
        FaultKind::SlowFsync,
    ];

    /// The kind's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Crash => "crash",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Bridge => "bridge",
            FaultKind::Delay => "delay",
            FaultKind::SlowFsync => "fsync",
        }
    }

    /// Parses a comma-separated list of kinds, or `all`.
    pub fn parse_list(text: &str) -> Result<Vec<FaultKind>, UnknownFault> {
        if text.trim() == "all" {
            return Ok(FaultKind::ALL.to_vec());
        }
        let mut kinds = BTreeSet::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            kinds.insert(name.parse()?);
        }
        Ok(kinds.into_iter().collect())
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is not one of [`FaultKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown fault {0:?} (known: kill, crash, pause, partition, isolate, bridge, delay, fsync, all)"
)]
pub struct UnknownFault(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownFault(s.to_string()))
    }
}

/// How strong the chosen faults are.
#[derive(Debug, Clone)]
pub struct FaultTuning {
    /// Smallest and largest delay of one link ([`FaultKind::Delay`]).
    pub link_delay: (Duration, Duration),
    /// Smallest and largest stall of a commit ([`FaultKind::SlowFsync`]).
    pub fsync_delay: (Duration, Duration),
    /// How often a kill, isolation or minority picks the leader.
    pub leader_bias: f64,
}

impl FaultTuning {
    /// Faults for members with this heartbeat interval. openraft gives an
    /// append (heartbeats included) one heartbeat interval to be answered,
    /// so link delays span both sides of it: most links are slow but work,
    /// some deliver appends only after the leader gave up on them.
    pub fn for_heartbeat(heartbeat: Duration) -> FaultTuning {
        FaultTuning {
            link_delay: (heartbeat / 5, heartbeat * 3 / 2),
            fsync_delay: (Duration::from_millis(50), Duration::from_millis(800)),
            leader_bias: 0.65,
        }
    }
}

impl Default for FaultTuning {
    /// Tuned for the test clusters' 50 ms heartbeat.
    fn default() -> Self {
        FaultTuning::for_heartbeat(Duration::from_millis(50))
    }
}

/// One fault, chosen concretely (members are indexes into the cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL `member`.
    Kill {
        /// The member killed.
        member: usize,
        /// Whether it was the leader.
        leader: bool,
    },
    /// SIGKILL every member.
    Crash {
        /// The leader when the fault was chosen.
        leader: usize,
    },
    /// SIGSTOP `member` (the leader).
    Pause {
        /// The member paused.
        member: usize,
    },
    /// Cut `links` (both ways).
    Cut {
        /// Partition, isolate or bridge.
        kind: FaultKind,
        /// The groups of members that still see each other, for the
        /// report (a bridge's middle member is its own group).
        groups: Vec<Vec<usize>>,
        /// Every link cut, as (smaller index, larger index).
        links: BTreeSet<(usize, usize)>,
        /// The leader when the fault was chosen.
        leader: usize,
    },
    /// Slow links: member `to` holds requests from `from` this long.
    Delay {
        /// Delay per (from, to).
        delays: BTreeMap<(usize, usize), Duration>,
    },
    /// Stall the raft log commits of `members`.
    SlowFsync {
        /// The members whose disks stall.
        members: Vec<usize>,
        /// The stall added to every commit.
        delay: Duration,
        /// The leader when the fault was chosen.
        leader: usize,
    },
}

impl Fault {
    /// Chooses a fault of `kind` for a cluster of `size` members led by
    /// `leader`.
    pub fn choose(
        kind: FaultKind,
        size: usize,
        leader: usize,
        tuning: &FaultTuning,
        rng: &mut impl Rng,
    ) -> Fault {
        let others: Vec<usize> = (0..size).filter(|m| *m != leader).collect();
        let pick_leader = rng.gen_bool(tuning.leader_bias) || others.is_empty();
        match kind {
            FaultKind::Kill => {
                let member = match others.choose(rng) {
                    Some(other) if !pick_leader => *other,
                    _ => leader,
                };
                Fault::Kill {
                    member,
                    leader: member == leader,
                }
            }
            FaultKind::Crash => Fault::Crash { leader },
            FaultKind::Pause => Fault::Pause { member: leader },
            FaultKind::Partition => {
                let mut order = others.clone();
                order.shuffle(rng);
                // The leader joins the minority (size/2 members) or the
                // majority.
                let minority_size = size / 2;
                let mut minority = Vec::new();
                if pick_leader {
                    minority.push(leader);
                }
                while minority.len() < minority_size {
                    minority.extend(order.pop());
                }
                let mut majority: Vec<usize> =
                    (0..size).filter(|m| !minority.contains(m)).collect();
                minority.sort_unstable();
                majority.sort_unstable();
                let links = links_between(&[minority.clone(), majority.clone()]);
                Fault::Cut {
                    kind,
                    groups: vec![minority, majority],
                    links,
                    leader,
                }
            }
            FaultKind::Isolate => {
                let member = match others.choose(rng) {
                    Some(other) if !pick_leader => *other,
                    _ => leader,
                };
                let rest: Vec<usize> = (0..size).filter(|m| *m != member).collect();
                let groups = vec![vec![member], rest];
                Fault::Cut {
                    kind,
                    links: links_between(&groups),
                    groups,
                    leader,
                }
            }
            FaultKind::Bridge => {
                let mut order: Vec<usize> = (0..size).collect();
                order.shuffle(rng);
                let middle = order.pop().unwrap_or(leader);
                let half = order.len() / 2;
                let mut left = order[..half].to_vec();
                let mut right = order[half..].to_vec();
                left.sort_unstable();
                right.sort_unstable();
                let links = links_between(&[left.clone(), right.clone()]);
                Fault::Cut {
                    kind,
                    groups: vec![left, vec![middle], right],
                    links,
                    leader,
                }
            }
            FaultKind::Delay => {
                let (low, high) = tuning.link_delay;
                let mut delays = BTreeMap::new();
                for from in 0..size {
                    for to in (0..size).filter(|to| *to != from) {
                        delays.insert((from, to), between(rng, low, high));
                    }
                }
                Fault::Delay { delays }
            }
            FaultKind::SlowFsync => {
                let (low, high) = tuning.fsync_delay;
                let mut members = match rng.gen_range(0..3) {
                    // The leader alone: followers still make a quorum.
                    0 => vec![leader],
                    // A majority, with the leader: every commit waits.
                    1 => {
                        let mut order = others.clone();
                        order.shuffle(rng);
                        order.truncate(size / 2);
                        order.push(leader);
                        order
                    }
                    _ => (0..size).collect(),
                };
                members.sort_unstable();
                Fault::SlowFsync {
                    members,
                    delay: between(rng, low, high),
                    leader,
                }
            }
        }
    }

    /// The kind of the fault.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Crash { .. } => FaultKind::Crash,
            Fault::Pause { .. } => FaultKind::Pause,
            Fault::Cut { kind, .. } => *kind,
            Fault::Delay { .. } => FaultKind::Delay,
            Fault::SlowFsync { .. } => FaultKind::SlowFsync,
        }
    }
}

/// A member's name in reports (as the cluster names its processes).
pub fn member_name(member: usize) -> String {
    format!("m{}", member + 1)
}

fn group_names(group: &[usize]) -> String {
    let names: Vec<String> = group.iter().map(|m| member_name(*m)).collect();
    format!("{{{}}}", names.join(","))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill { member, leader } => {
                let role = if *leader { " (leader)" } else { "" };
                write!(f, "kill -9 {}{role}", member_name(*member))
            }
            Fault::Crash { leader } => {
                write!(f, "kill -9 every member (leader {})", member_name(*leader))
            }
            Fault::Pause { member } => write!(f, "SIGSTOP {} (leader)", member_name(*member)),
            Fault::Cut {
                kind,
                groups,
                leader,
                ..
            } => {
                let sides: Vec<String> = groups.iter().map(|g| group_names(g)).collect();
                let joint = if *kind == FaultKind::Bridge {
                    " ~ "
                } else {
                    " | "
                };
                write!(
                    f,
                    "{kind} {} (leader {})",
                    sides.join(joint),
                    member_name(*leader)
                )
            }
            Fault::Delay { delays } => {
                let low = delays.values().min().copied().unwrap_or_default();
                let high = delays.values().max().copied().unwrap_or_default();
                write!(
                    f,
                    "delay {} links by {}..{} ms",
                    delays.len(),
                    low.as_millis(),
                    high.as_millis()
                )
            }
            Fault::SlowFsync {
                members,
                delay,
                leader,
            } => write!(
                f,
                "fsync +{} ms on {} (leader {})",
                delay.as_millis(),
                group_names(members),
                member_name(*leader)
            ),
        }
    }
}

/// Every link between members of different groups, as (smaller, larger).
pub fn links_between(groups: &[Vec<usize>]) -> BTreeSet<(usize, usize)> {
    let mut links = BTreeSet::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            for &x in a {
                for &y in b {
                    links.insert((x.min(y), x.max(y)));
                }
            }
        }
    }
    links
}

fn between(rng: &mut impl Rng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    rng.gen_range(low..=high)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn cut(fault: &Fault) -> (&Vec<Vec<usize>>, &BTreeSet<(usize, usize)>) {
        match fault {
            Fault::Cut { groups, links, .. } => (groups, links),
            other => panic!("not a cut: {other:?}"),
        }
    }

    #[test]
    fn names_parse_back_and_all_means_every_kind() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
        }
        assert_eq!(FaultKind::parse_list("all").unwrap(), FaultKind::ALL);
        assert_eq!(
            FaultKind::parse_list("pause, kill,kill").unwrap(),
            vec![FaultKind::Kill, FaultKind::Pause]
        );
        assert_eq!(
            FaultKind::parse_list("kill,meteor"),
            Err(UnknownFault("meteor".into()))
        );
    }

    #[test]
    fn a_partition_leaves_a_majority_and_puts_the_leader_on_both_sides() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut leader_in_minority = [false, false];
        for size in [3usize, 5] {
            for _ in 0..50 {
                let fault = Fault::choose(
                    FaultKind::Partition,
                    size,
                    1,
                    &FaultTuning::default(),
                    &mut rng,
                );
                let (groups, links) = cut(&fault);
                assert_eq!(groups[0].len(), size / 2);
                assert_eq!(groups[0].len() + groups[1].len(), size);
                assert_eq!(links.len(), groups[0].len() * groups[1].len());
                leader_in_minority[usize::from(groups[0].contains(&1))] = true;
            }
        }
        assert_eq!(leader_in_minority, [true, true]);
    }

    #[test]
    fn a_bridge_cuts_the_halves_apart_but_not_the_middle() {
        let mut rng = StdRng::seed_from_u64(3);
        for size in [3usize, 5] {
            let fault = Fault::choose(
                FaultKind::Bridge,
                size,
                0,
                &FaultTuning::default(),
                &mut rng,
            );
            let (groups, links) = cut(&fault);
            let middle = groups[1][0];
            assert!(links.iter().all(|(a, b)| *a != middle && *b != middle));
            assert_eq!(links.len(), (size / 2) * (size / 2));
            for &x in &groups[0] {
                for &y in &groups[2] {
                    assert!(links.contains(&(x.min(y), x.max(y))));
                }
            }
        }
    }

    #[test]
    fn isolation_and_kills_pick_the_leader_more_often_than_not() {
        let mut rng = StdRng::seed_from_u64(11);
        let tuning = FaultTuning::default();
        let mut leader_kills = 0;
        for _ in 0..200 {
            match Fault::choose(FaultKind::Kill, 3, 2, &tuning, &mut rng) {
                Fault::Kill { member, leader } => {
                    assert_eq!(leader, member == 2);
                    leader_kills += usize::from(leader);
                }
                other => panic!("not a kill: {other:?}"),
            }
            let isolate = Fault::choose(FaultKind::Isolate, 3, 2, &tuning, &mut rng);
            let (groups, links) = cut(&isolate);
            assert_eq!(groups[0].len(), 1);
            assert_eq!(links.len(), 2);
        }
        assert!(leader_kills > 100 && leader_kills < 200, "{leader_kills}");
    }

    #[test]
    fn delays_cover_every_directed_link_within_bounds() {
        let mut rng = StdRng::seed_from_u64(5);
        let tuning = FaultTuning::default();
        let Fault::Delay { delays } = Fault::choose(FaultKind::Delay, 5, 0, &tuning, &mut rng)
        else {
            panic!("not a delay");
        };
        assert_eq!(delays.len(), 20);
        assert!(delays
            .values()
            .all(|d| *d >= tuning.link_delay.0 && *d <= tuning.link_delay.1));
    }

    #[test]
    fn slow_disks_always_include_the_leader() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..30 {
            let fault = Fault::choose(
                FaultKind::SlowFsync,
                5,
                4,
                &FaultTuning::default(),
                &mut rng,
            );
            let Fault::SlowFsync { members, .. } = &fault else {
                panic!("not a slow fsync");
            };
            assert!(members.contains(&4), "{fault}");
            assert!(matches!(members.len(), 1 | 3 | 5), "{fault}");
        }
    }
}
