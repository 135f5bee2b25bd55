use super::*;
use crate::balance::StealHalf;
use crate::policy::RoundRobin;

#[derive(Debug, PartialEq)]
struct Job {
    id: u32,
    pinned: bool,
    io: bool,
    home: CoreId,
    /// Cores it may run on (`None`: any).
    mask: Option<Vec<CoreId>>,
    entity: crate::fair::Entity,
}

impl crate::fair::Schedulable for Job {
    fn entity(&self) -> &crate::fair::Entity {
        &self.entity
    }
    fn entity_mut(&mut self) -> &mut crate::fair::Entity {
        &mut self.entity
    }
}

impl Job {
    fn new(id: u32) -> Job {
        Job {
            id,
            pinned: false,
            io: false,
            home: 0,
            mask: None,
            entity: crate::fair::Entity::UNPLACED,
        }
    }
}

impl TaskHandle for Job {
    fn pinned(&self) -> bool {
        self.pinned
    }
    fn io_woken(&self) -> bool {
        self.io
    }
    fn allowed_on(&self, core: CoreId) -> bool {
        self.mask.as_ref().is_none_or(|m| m.contains(&core))
    }
    fn leaving(&mut self, to: CoreId) {
        self.home = to;
    }
    fn arriving(&mut self, here: CoreId, _now: Nanos) {
        self.home = here;
    }
    fn in_group(&self, group: u64) -> bool {
        group == 100 && self.id < 3
    }
}

type Sched = CoreSched<Job, u32, RoundRobin<Job>, StealHalf>;

fn sched(me: CoreId, cores: usize) -> Sched {
    CoreSched::new(
        me,
        cores,
        RoundRobin::new(1_000),
        StealHalf::new(me, cores),
        7,
        SchedConfig::default(),
    )
}

/// Delivers every outbox message of `cores` until none is left.
fn settle(cores: &mut [Sched], now: Nanos) {
    loop {
        let mut mail = Vec::new();
        for core in cores.iter_mut() {
            let from = core.core();
            mail.extend(core.take_outbox().map(|(to, m)| (from, to, m)));
        }
        if mail.is_empty() {
            return;
        }
        for (from, to, m) in mail {
            match cores[to].receive(Some(from), m, now) {
                Received::Done => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn an_idle_core_gets_half_of_a_busy_ones_strands() {
    let mut cores = [sched(0, 2), sched(1, 2)];
    for id in 0..6 {
        cores[0].enqueue(Job::new(id), Insert::Tail, 0);
    }
    assert!(
        !cores[0].has_outbox(),
        "no idle peer known: nothing offered"
    );
    let spin = cores[1].idle(false);
    assert_eq!(spin.spin, IdleConfig::default().spin_max);
    settle(&mut cores, 0);
    assert_eq!(cores[0].ready_len(), 3);
    assert_eq!(cores[1].ready_len(), 3);
    let moved: Vec<_> = std::iter::from_fn(|| cores[1].next(0)).collect();
    assert_eq!(
        moved.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(moved.iter().all(|j| j.home == 1));
    assert_eq!(cores[0].counters().given, 3);
    assert_eq!(cores[1].counters().stolen, 3);
    assert_eq!(cores[1].counters().requests, 1);
}

#[test]
fn a_refused_asker_is_offered_work_later() {
    let mut cores = [sched(0, 2), sched(1, 2)];
    let _ = cores[1].idle(false);
    settle(&mut cores, 0);
    assert_eq!(cores[0].counters().refusals, 1);
    // A round of refusals: core 1 stops asking until it is busy again.
    let _ = cores[1].idle(false);
    assert!(!cores[1].has_outbox());
    cores[0].enqueue(Job::new(1), Insert::Tail, 0);
    assert!(!cores[0].has_outbox(), "a lone strand stays");
    cores[0].enqueue(Job::new(2), Insert::Tail, 0);
    settle(&mut cores, 0);
    assert_eq!((cores[0].ready_len(), cores[1].ready_len()), (1, 1));
    assert_eq!(cores[0].counters().offers, 1);
}

#[test]
fn pinned_strands_stay_and_a_refused_asker_is_offered_what_may_move() {
    let mut cores = [sched(0, 2), sched(1, 2)];
    for id in 0..4 {
        let mut job = Job::new(id);
        job.pinned = id >= 2;
        cores[0].enqueue(job, Insert::Tail, 0);
    }
    let _ = cores[1].idle(false);
    settle(&mut cores, 0);
    // Asked for 2 (half of 4), the last two: both pinned, so none moved...
    assert_eq!((cores[0].ready_len(), cores[1].ready_len()), (4, 0));
    // ...but core 1 is remembered idle and offered the next movable surplus.
    cores[0].enqueue(Job::new(4), Insert::Tail, 0);
    settle(&mut cores, 0);
    assert_eq!(cores[1].next(0).map(|j| j.id), Some(4));
    assert_eq!(cores[0].counters().offers, 1);
}

#[test]
fn strands_masked_off_a_core_are_not_given_to_it_nor_evicted_there() {
    // Core 1 asks core 0 for work; of the half it takes (the last three),
    // the one whose mask leaves out core 1 stays.
    let mut cores = [sched(0, 2), sched(1, 2)];
    for id in 0..6 {
        let mut job = Job::new(id);
        if id == 4 {
            job.mask = Some(vec![0]);
        }
        cores[0].enqueue(job, Insert::Tail, 0);
    }
    let _ = cores[1].idle(false);
    cores[1].idle_ended(0, IdleEnd::Spun);
    settle(&mut cores, 0);
    let mut moved = Vec::new();
    while let Some(job) = cores[1].next(0) {
        assert!(job.allowed_on(1), "strand {} moved to core 1", job.id);
        moved.push(job.id);
    }
    assert_eq!(moved, [3, 5], "the unmasked strands of that half move");
    // A leased core evicts a strand to the next shared core its mask
    // allows, skipping the others; one no shared core allows stays.
    let mut leased = sched(2, 3);
    leased.set_exclusive(Some((vec![0, 1], Some(100))), 0);
    let mut to_one = Job::new(7);
    to_one.mask = Some(vec![1, 2]);
    assert_eq!(leased.evict(to_one, 0).ok(), Some(1));
    let mut nowhere = Job::new(8);
    nowhere.mask = Some(vec![2]);
    assert!(leased.evict(nowhere, 0).is_err());
}

#[test]
fn a_leased_core_under_a_fair_policy_lets_go_of_what_it_evicts() {
    // Evicted strands leave the leased core's virtual-time set (its load
    // weighs only what stays) and join the shared core's when they arrive.
    use crate::fair::{Fair, Rule};
    let fair = |me| -> CoreSched<Job, u32, Fair<Job>, StealHalf> {
        CoreSched::new(
            me,
            2,
            Fair::<Job>::new(Rule::EarliestEligibleDeadline, 1_000_000),
            StealHalf::new(me, 2),
            7,
            SchedConfig::default(),
        )
    };
    let (mut shared, mut leased) = (fair(0), fair(1));
    leased.set_exclusive(Some((vec![0], Some(100))), 0);
    // Ids 0..3 are of group 100 and stay; 3..6 are evicted.
    for id in 0..6 {
        leased.enqueue(Job::new(id), Insert::Tail, 0);
    }
    let mut ran = Vec::new();
    while let Some(job) = leased.next(0) {
        ran.push(job.id);
        let mut job = job;
        leased.ran(&mut job, 0);
        leased.exited(&mut job);
    }
    assert_eq!(ran, [0, 1, 2]);
    assert_eq!(
        leased.policy().load().weight,
        0,
        "nothing evicted still counts here"
    );
    for (to, mail) in leased.take_outbox().collect::<Vec<_>>() {
        assert_eq!(to, 0);
        assert!(matches!(shared.receive(Some(1), mail, 0), Received::Done));
    }
    assert_eq!(shared.ready_len(), 3);
    assert_eq!(shared.policy().load().weight, 3 * 1024);
    // And each parks there without the set going wrong.
    while let Some(mut job) = shared.next(0) {
        shared.ran(&mut job, 10);
        let _ = shared.block(job);
    }
    assert_eq!(shared.policy().load().weight, 0);
}

#[test]
fn io_woken_strands_move_only_once_the_core_was_busy_for_io_stay() {
    let stay = SchedConfig::default().io_stay;
    for (asked_at, moves) in [(1_000 + stay - 1, false), (1_000 + stay, true)] {
        let mut cores = [sched(0, 2), sched(1, 2)];
        cores[0].idle_ended(1_000, IdleEnd::Spun);
        cores[0].enqueue(Job::new(0), Insert::Tail, 1_000);
        let mut job = Job::new(1);
        job.io = true;
        cores[0].enqueue(job, Insert::Tail, 1_000);
        let _ = cores[1].idle(false);
        settle(&mut cores, asked_at);
        assert_eq!(
            cores[1].ready_len(),
            usize::from(moves),
            "asked at {asked_at}"
        );
    }
}

#[test]
fn wakes_spawns_and_orphans_reach_the_driver_or_the_queue() {
    let mut core = sched(1, 3);
    let slot = core.block(Job::new(9));
    assert_eq!(core.blocked().len(), 1);
    match core.receive(Some(0), Mail::Wake(9), 0) {
        Received::Wake(9) => assert!(core.wake(slot, 0)),
        other => panic!("{other:?}"),
    }
    assert!(!core.wake(slot, 0), "a slot wakes once");
    assert!(matches!(
        core.receive(Some(2), Mail::Spawn(Box::new(Job::new(4))), 0),
        Received::Done
    ));
    match core.receive(
        None,
        Mail::Orphan(Box::new(Job::new(5)), Outcome::Parked, 0),
        0,
    ) {
        // Not through `arriving`: the driver makes the core its home.
        Received::Orphan(job, Outcome::Parked) => assert_eq!(job.home, 0),
        other => panic!("{other:?}"),
    }
    let ids: Vec<_> = std::iter::from_fn(|| core.next(0))
        .map(|j| (j.id, j.home))
        .collect();
    assert_eq!(ids, vec![(9, 0), (4, 1)]);
    core.spawn(Job::new(6), 2, 0);
    let out: Vec<_> = core.take_outbox().collect();
    assert!(matches!(out.as_slice(), [(2, Mail::Spawn(_))]));
}

#[test]
fn ids_are_unique_across_cores_and_shutdown_takes_everything() {
    let mut a = sched(0, 2);
    let mut b = sched(1, 2);
    let ids: std::collections::HashSet<u64> =
        (0..50).flat_map(|_| [a.mint_id(), b.mint_id()]).collect();
    assert_eq!(ids.len(), 100);
    a.enqueue(Job::new(1), Insert::Tail, 0);
    let _ = a.block(Job::new(2));
    assert_eq!(a.abandon(0).len(), 2);
    assert_eq!((a.ready_len(), a.blocked().len()), (0, 0));
}

#[test]
fn a_busy_core_polls_every_so_many_passes_and_whenever_the_clock_moves() {
    let mut s = sched(0, 1);
    let every = SchedConfig::default().busy_poll_passes as usize;
    // The clock moved from 0 to 5: poll at once, then every `every` passes.
    assert!(s.busy_poll_due(5));
    let due: Vec<bool> = (0..2 * every).map(|_| s.busy_poll_due(5)).collect();
    assert_eq!(due.iter().filter(|&&d| d).count(), 2);
    assert!(due[every - 1] && due[2 * every - 1]);
    // A new clock reading polls at once.
    assert!(s.busy_poll_due(6));
    // A poll made elsewhere (the idle path) restarts the count.
    (0..every - 1).for_each(|_| assert!(!s.busy_poll_due(6)));
    s.polled();
    assert!(!s.busy_poll_due(6), "the count restarted");
}

#[test]
fn a_throttled_strand_waits_out_its_release_unseen_by_balancing() {
    let mut cores = vec![sched(0, 2), sched(1, 2)];
    cores[0].enqueue(Job::new(1), Insert::Tail, 0);
    cores[0].enqueue(Job::new(2), Insert::Tail, 0);
    let first = cores[0].next(0).unwrap();
    assert_eq!(first.id, 1);
    cores[0].throttle(first, 5_000);
    assert_eq!(cores[0].throttled(), 1);
    assert_eq!(cores[0].counters().throttles, 1);
    // Only job 2 is ready, and an idle core asking for work cannot get job 1.
    assert_eq!(cores[0].ready_len(), 1);
    let second = cores[0].next(1_000).unwrap();
    assert_eq!(second.id, 2);
    cores[0].enqueue(second, Insert::Tail, 1_000);
    let _ = cores[1].idle(false);
    settle(&mut cores, 1_000);
    assert!(cores[1].ready_len() <= 1);
    assert_eq!(
        cores[0].throttled(),
        1,
        "a throttled strand is never given away"
    );
    // With nothing else to do, the core sleeps until the release.
    let mut idle = sched(0, 1);
    idle.throttle(Job::new(3), 7_000);
    match idle.park(2_000, false) {
        Park::Sleep(Some(at)) => assert_eq!(at, 7_000),
        other => panic!("expected a sleep until the release, got {other:?}"),
    }
    assert!(idle.next(6_999).is_none());
    assert_eq!(idle.next(7_000).map(|j| j.id), Some(3));
    assert_eq!(idle.throttled(), 0);
    // At shutdown the throttled are taken with the rest.
    cores[0].throttle(Job::new(4), u64::MAX - 1);
    let all = cores[0].abandon(2_000);
    assert!(all.iter().any(|j| j.id == 4));
}

/// Strands released together run before the others, the one due first
/// first, under every policy (the scheduler hands them to
/// `Policy::released` latest first).
#[test]
fn released_strands_run_first_in_the_order_they_came_due() {
    for (_, kind) in crate::PolicyKind::ALL {
        let mut s: CoreSched<Job, u32, crate::AnyPolicy<Job>, StealHalf> = CoreSched::new(
            0,
            1,
            kind.build(1_000),
            StealHalf::new(0, 1),
            7,
            SchedConfig::default(),
        );
        for id in 1..=5 {
            s.enqueue(Job::new(id), Insert::Tail, 0);
        }
        let a = s.next(0).unwrap();
        let b = s.next(0).unwrap();
        let (a_id, b_id) = (a.id, b.id);
        // The first picked is due later than the second.
        s.throttle(a, 5_000);
        s.throttle(b, 3_000);
        let order: Vec<u32> = (0..2).map(|_| s.next(6_000).unwrap().id).collect();
        assert_eq!(order, [b_id, a_id], "{kind:?}");
    }
}

#[test]
fn a_leased_core_balances_with_nobody_and_evicts_to_the_shared_ones() {
    let mut cores = vec![sched(0, 3), sched(1, 3), sched(2, 3)];
    cores[1].set_exclusive(Some((vec![0, 2], Some(100))), 0);
    assert!(cores[1].is_exclusive());
    for id in 0..8 {
        let mut job = Job::new(id);
        job.pinned = id == 3;
        cores[1].enqueue(job, Insert::Tail, 0);
    }
    // Idle, the others ask; the leased core gives nothing away and asks
    // nobody itself.
    let _ = cores[0].idle(false);
    let _ = cores[2].idle(false);
    let _ = cores[1].idle(false);
    assert!(!cores[1].has_outbox(), "a leased core asked for work");
    settle(&mut cores, 0);
    assert_eq!(cores[1].ready_len(), 8, "a leased core gave strands away");
    assert_eq!(cores[0].ready_len() + cores[2].ready_len(), 0);
    // Jobs 0..=2 are the group's (`in_group` below), 3 is pinned there;
    // the rest are sent to 0 and 2 in turn as `next` meets them.
    let mut kept = Vec::new();
    while let Some(job) = cores[1].next(0) {
        kept.push(job.id);
    }
    assert_eq!(kept, vec![0, 1, 2, 3]);
    settle(&mut cores, 0);
    assert_eq!(cores[0].ready_len(), 2);
    assert_eq!(cores[2].ready_len(), 2);
    assert_eq!(cores[1].counters().evicted, 4);
    // The lease ends: it balances again.
    cores[1].set_exclusive(None, 0);
    assert!(cores[1].evict(Job::new(99), 0).is_err());
    for id in 10..14 {
        cores[1].enqueue(Job::new(id), Insert::Tail, 0);
    }
    let _ = cores[1].receive(Some(0), Mail::WorkRequest, 0);
    let granted: usize = cores[1]
        .take_outbox()
        .map(|(_, m)| match m {
            Mail::WorkReply(tasks) => tasks.len(),
            _ => 0,
        })
        .sum();
    assert!(granted > 0, "after the lease the core gives work again");
}

/// At shutdown every strand a core holds becomes ready — blocked and
/// throttled ones included, timers forgotten — and from then on the core
/// keeps them all: work requests get nothing, and a lease ends.
#[test]
fn waking_all_at_shutdown_readies_everything_and_gives_nothing_away() {
    let mut cores = vec![sched(0, 2), sched(1, 2)];
    for id in 0..4 {
        cores[1].enqueue(Job::new(id), Insert::Tail, 0);
    }
    let _ = cores[1].block(Job::new(10));
    let _ = cores[1].block(Job::new(11));
    let held = cores[1].next(0).unwrap();
    cores[1].throttle(held, 1_000_000);
    let _ = cores[1].arm(5_000, 7);
    cores[1].set_exclusive(Some((vec![0], None)), 0);
    assert_eq!(cores[1].wake_all(0), 3);
    assert!(cores[1].timers().is_empty());
    assert!(cores[1].blocked().is_empty());
    assert_eq!(cores[1].throttled(), 0);
    assert!(!cores[1].is_exclusive());
    // Idle core 0 asks; core 1 keeps all six.
    let _ = cores[0].idle(false);
    settle(&mut cores, 0);
    assert_eq!(cores[0].ready_len(), 0);
    let mut ids = Vec::new();
    while let Some(job) = cores[1].next(0) {
        ids.push(job.id);
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2, 3, 10, 11]);
}
