//! CPU authority: how exactly braid holds strands to what they are given.
//!
//! `share_accuracy`: three groups of CPU-bound strands, weights 1 : 2 : 4, on
//! 2 cores for 1 s (`--full`: 10 s); the figure is the largest distance of a
//! group's share of the CPU from 1/7, 2/7, 4/7, in percentage points. braid
//! under EEVDF with weight balancing, and under round robin (which ignores
//! weights), against Linux: threads in three cgroup v1 `cpu` groups with
//! `cpu.shares` 1024 : 2048 : 4096 (skipped with a note where the
//! controller is not writable).
//!
//! `group_share_accuracy`: the same weights given to groups of 6, 2 and 4
//! strands (or threads): braid's share groups (`Builder::group_weight`,
//! EEVDF with weight balancing) against the same cgroups holding 6, 2 and 4
//! threads; braid strands of one weight (no groups) show what counting
//! strands gives (1/2, 1/6, 1/3).
//!
//! `budget_accuracy`: a CPU budget of 2 ms per 10 ms, held over 100 periods.
//!
//! Each contender spins for one second and measures, from inside, how long
//! its own code ran: it reads the clock in a tight loop and adds up the steps
//! shorter than [`GAP`] (a longer step is time it was not running: throttled,
//! held or descheduled). The first figure is how far that share of the second
//! is from the 20 % granted, in percentage points; the second is the same for
//! the CPU time it was given (the thread's CPU clock; for braid, what its
//! context was charged), which also counts what enforcing the budget cost it
//! (signals, timer and clock calls, switches).
//!
//! - braid (the `braid` row), cooperative: a strand bound to a
//!   `SchedContext` that yields every 50 µs;
//! - braid, never yielding: the same strand making no runtime call at all;
//! - Linux `SCHED_DEADLINE`: a thread with runtime 2 ms, deadline and period
//!   10 ms (needs root and a kernel that admits it; skipped with a note
//!   otherwise);
//! - a cgroup v1 `cpu` controller group with `cpu.cfs_quota_us` 2000 and
//!   `cpu.cfs_period_us` 10000 holding one spinning thread (skipped with a
//!   note where the controller is not writable).

use crate::figures::{sample_each, Row};
use crate::report::{Figure, Suite};
use braid::sched::SchedContext;
use std::error::Error;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const BUDGET: Duration = Duration::from_millis(2);
const PERIOD: Duration = Duration::from_millis(10);
const WINDOW: Duration = Duration::from_secs(1);
/// A clock step longer than this is time the spinner did not run.
const GAP: Duration = Duration::from_micros(20);

pub(crate) fn run_all(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    share_accuracy(suite)?;
    if !suite.wants("budget_accuracy") {
        return Ok(());
    }
    suite
        .say("\nbudget accuracy: 2 ms per 10 ms for 1 s (100 periods), share measured from inside");
    let mut rows: Vec<(&'static str, Vec<Shares>)> = vec![
        ("braid", sample_each(RUNS, || braid_run(true))?),
        (
            "braid-never-yields",
            sample_each(RUNS, || braid_run(false))?,
        ),
    ];
    match sample_each(RUNS, deadline_run) {
        Ok(shares) => rows.push(("sched-deadline", shares)),
        Err(why) => suite.note(&format!("budget accuracy: SCHED_DEADLINE skipped: {why}")),
    }
    match sample_each(RUNS, cgroup_run) {
        Ok(shares) => rows.push(("cgroup-quota", shares)),
        Err(why) => suite.note(&format!("budget accuracy: cgroup quota skipped: {why}")),
    }
    for (name, shares) in &rows {
        let shown: Vec<String> = shares
            .iter()
            .map(|s| format!("{:.3}/{:.3}", s.inside, s.cpu))
            .collect();
        suite.say(&format!("  {name}: % ran/given {}", shown.join(" ")));
    }
    for (metric, title, pick) in [
        (
            "share error",
            "2 ms / 10 ms budget over 100 periods: share its code ran, distance from 20 %",
            (|s: &Shares| s.inside) as fn(&Shares) -> f64,
        ),
        (
            "cpu share error",
            "2 ms / 10 ms budget over 100 periods: CPU time given, distance from 20 %",
            |s: &Shares| s.cpu,
        ),
    ] {
        let rows: Vec<Row> = rows
            .iter()
            .map(|(name, shares)| {
                Row::sorting(
                    name,
                    shares.iter().map(|s| (pick(s) - 20.0).abs()).collect(),
                )
            })
            .collect();
        suite.figure(
            &Figure {
                workload: "budget_accuracy",
                title,
                metric,
                unit: "pp",
                cores: 1,
                target: Some(0.2),
                higher_is_better: false,
            },
            &rows,
        );
    }
    Ok(())
}

/// One run's shares of the window, in percent.
#[derive(Clone, Copy)]
struct Shares {
    /// Measured by the spinning code itself.
    inside: f64,
    /// CPU time it was given.
    cpu: f64,
}

/// Spins for `WINDOW`, calling `between` every ~50 µs of its own running;
/// returns the percentage of the window it ran, and the window.
fn spin(mut between: impl FnMut()) -> (f64, Duration) {
    let start = Instant::now();
    let mut last = start;
    let mut ran = Duration::ZERO;
    let mut since_call = Duration::ZERO;
    loop {
        let now = Instant::now();
        let step = now - last;
        last = now;
        if step < GAP {
            ran += step;
            since_call += step;
        }
        if now - start >= WINDOW {
            return (
                ran.as_secs_f64() * 100.0 / (now - start).as_secs_f64(),
                now - start,
            );
        }
        if since_call >= Duration::from_micros(50) {
            since_call = Duration::ZERO;
            between();
        }
    }
}

/// A thread's CPU clock, in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the call writes.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// `spin` on a thread, with the CPU time the thread got.
fn spin_thread() -> Shares {
    let cpu = thread_cpu();
    let (inside, window) = spin(|| {});
    Shares {
        inside,
        cpu: (thread_cpu() - cpu) * 100.0 / window.as_secs_f64(),
    }
}

fn braid_run(cooperative: bool) -> Result<Shares, Box<dyn Error>> {
    let rt = braid::Runtime::builder().cores(1).build()?;
    let authority = rt.take_authority().ok_or("the authority was taken")?;
    let ctx = authority.mint(&SchedContext::new(BUDGET, PERIOD))?;
    let bound = ctx.clone();
    let (inside, window) = rt.block_on(move || {
        braid::Builder::new()
            .context(&bound)
            .spawn(move || {
                if cooperative {
                    spin(braid::yield_now)
                } else {
                    spin(|| {})
                }
            })
            .map(|h| h.join())
    })??;
    let used = ctx.stats()?.used;
    Ok(Shares {
        inside,
        cpu: used.as_secs_f64() * 100.0 / window.as_secs_f64(),
    })
}

/// `struct sched_attr` of `sched_setattr(2)`.
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

const SCHED_DEADLINE: u32 = 6;

fn deadline_run() -> Result<Shares, Box<dyn Error>> {
    let thread = std::thread::spawn(|| -> Result<Shares, String> {
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: SCHED_DEADLINE,
            runtime: BUDGET.as_nanos() as u64,
            deadline: PERIOD.as_nanos() as u64,
            period: PERIOD.as_nanos() as u64,
            ..SchedAttr::default()
        };
        // SAFETY: `attr` is a live sched_attr of the size it states; pid 0
        // is the calling thread.
        let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        if rc != 0 {
            return Err(format!(
                "sched_setattr failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(spin_thread())
    });
    Ok(thread
        .join()
        .map_err(|_| "the deadline thread panicked")??)
}

fn cgroup_run() -> Result<Shares, Box<dyn Error>> {
    let root = std::path::Path::new("/sys/fs/cgroup/cpu");
    let dir = root.join(format!("braid-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = (|| -> Result<Shares, Box<dyn Error>> {
        std::fs::write(dir.join("cpu.cfs_period_us"), "10000")?;
        std::fs::write(dir.join("cpu.cfs_quota_us"), "2000")?;
        let tasks = dir.join("tasks");
        let root_tasks = root.join("tasks");
        let thread = std::thread::spawn(move || -> Result<Shares, String> {
            // SAFETY: plain system call without arguments.
            let tid = unsafe { libc::gettid() };
            std::fs::write(&tasks, tid.to_string())
                .map_err(|e| format!("joining the group: {e}"))?;
            let share = spin_thread();
            std::fs::write(&root_tasks, tid.to_string()).map_err(|e| format!("leaving it: {e}"))?;
            Ok(share)
        });
        Ok(thread.join().map_err(|_| "the cgroup thread panicked")??)
    })();
    let _ = std::fs::remove_dir(&dir);
    result
}

const WEIGHTS: [u32; 3] = [1024, 2048, 4096];

/// How the share workloads give the weights: to strands (two per group, each
/// of its group's weight) or to share groups (of 6, 2 and 4 strands of the
/// default weight), or not at all (those groups, no weights).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Strands,
    Groups,
    Unweighted,
}

impl Layout {
    /// Strands (threads) per group.
    fn members(self) -> [usize; 3] {
        match self {
            Layout::Strands => [2, 2, 2],
            Layout::Groups | Layout::Unweighted => [6, 2, 4],
        }
    }
}

/// One share-accuracy figure: how the weights are given, and the braid row
/// it is compared with besides the cgroups.
struct ShareCase {
    workload: &'static str,
    heading: &'static str,
    title: &'static str,
    layout: Layout,
    control: (
        &'static str,
        braid::sched::PolicyKind,
        braid::sched::BalancerKind,
        Layout,
    ),
}

fn share_accuracy(suite: &mut Suite) -> Result<(), Box<dyn Error>> {
    use braid::sched::{BalancerKind, PolicyKind};
    let window = if suite.quick() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let cases = [
        ShareCase {
            workload: "share_accuracy",
            heading: "share accuracy: groups of weights 1 : 2 : 4, two CPU-bound strands each",
            title: "groups of weights 1 : 2 : 4 on 2 cores: largest distance from 1/7, 2/7, 4/7",
            layout: Layout::Strands,
            control: (
                "braid-round-robin",
                PolicyKind::RoundRobin,
                BalancerKind::StealHalf,
                Layout::Strands,
            ),
        },
        ShareCase {
            workload: "group_share_accuracy",
            heading: "group share accuracy: share groups of weights 1 : 2 : 4 holding 6, 2 and 4 CPU-bound strands",
            title: "share groups of 6, 2, 4 strands weighted 1 : 2 : 4 on 2 cores: largest distance from 1/7, 2/7, 4/7",
            layout: Layout::Groups,
            control: (
                "braid-no-groups",
                PolicyKind::Eevdf,
                BalancerKind::Weighted,
                Layout::Unweighted,
            ),
        },
    ];
    for case in cases {
        if !suite.wants(case.workload) {
            continue;
        }
        suite.say(&format!("\n{}, on 2 cores for {window:?}", case.heading));
        let (control, policy, balancer, control_layout) = case.control;
        let mut rows: Vec<(&'static str, Vec<[f64; 3]>)> = vec![
            (
                "braid",
                sample_each(RUNS, || {
                    braid_shares(
                        PolicyKind::Eevdf,
                        BalancerKind::Weighted,
                        window,
                        case.layout,
                    )
                })?,
            ),
            (
                control,
                sample_each(RUNS, || {
                    braid_shares(policy, balancer, window, control_layout)
                })?,
            ),
        ];
        match sample_each(RUNS, || cgroup_shares(window, case.layout)) {
            Ok(shares) => rows.push(("cgroup-shares", shares)),
            Err(why) => suite.note(&format!("{}: cgroup shares skipped: {why}", case.workload)),
        }
        share_figure(suite, case.workload, case.title, rows);
    }
    Ok(())
}

/// Prints each run's shares and files the figure: the largest distance of a
/// group's share from its weight's, per run.
fn share_figure(
    suite: &mut Suite,
    workload: &'static str,
    title: &'static str,
    rows: Vec<(&'static str, Vec<[f64; 3]>)>,
) {
    let ideal = WEIGHTS.map(|w| w as f64 * 100.0 / 7168.0);
    for (name, runs) in &rows {
        let shown: Vec<String> = runs
            .iter()
            .map(|s| format!("{:.2}:{:.2}:{:.2}", s[0], s[1], s[2]))
            .collect();
        suite.say(&format!("  {name}: % {}", shown.join(" ")));
    }
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(name, runs)| {
            let errors = runs
                .iter()
                .map(|s| (0..3).map(|g| (s[g] - ideal[g]).abs()).fold(0.0, f64::max));
            Row::sorting(name, errors.collect())
        })
        .collect();
    suite.figure(
        &Figure {
            workload,
            title,
            metric: "share error",
            unit: "pp",
            cores: 2,
            target: Some(2.0),
            higher_is_better: false,
        },
        &rows,
    );
}

/// Each group's share of the CPU its strands got, in percent.
fn shares_of(cpu: [f64; 3]) -> [f64; 3] {
    let total: f64 = cpu.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    cpu.map(|c| c * 100.0 / total)
}

/// Each group's share of the CPU in braid, counted by a tally per group.
fn braid_shares(
    policy: braid::sched::PolicyKind,
    balancer: braid::sched::BalancerKind,
    window: Duration,
    layout: Layout,
) -> Result<[f64; 3], Box<dyn Error>> {
    let rt = braid::Runtime::builder()
        .cores(2)
        .policy(policy)
        .balancer(balancer)
        .build()?;
    let cpu = rt.block_on(move || {
        let start = Instant::now();
        let tallies: [braid::Tally; 3] = Default::default();
        let members = layout.members();
        // The groups' strands interleaved, as `share_accuracy` always did.
        let most = members.iter().copied().max().unwrap_or(0);
        let order = (0..most).flat_map(|i| (0..3).filter(move |&g| i < members[g]));
        let spin = move || {
            while start.elapsed() < window {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(500) {
                    std::hint::spin_loop();
                }
                braid::yield_now();
            }
        };
        let handles: Vec<_> = match layout {
            Layout::Strands => order
                .map(|g| {
                    braid::Builder::new()
                        .weight(WEIGHTS[g])
                        .tally(&tallies[g])
                        .spawn(spin)
                        .expect("spawn")
                })
                .collect(),
            Layout::Groups | Layout::Unweighted => {
                // One root per group, holding the group's weight, spawns its
                // strands (which are in its group).
                let roots: Vec<_> = (0..3)
                    .map(|g| {
                        let builder = braid::Builder::new().tally(&tallies[g]);
                        let builder = match layout {
                            Layout::Groups => builder.group_weight(WEIGHTS[g]),
                            _ => builder,
                        };
                        builder
                            .spawn(move || {
                                let kids: Vec<_> =
                                    (0..members[g]).map(|_| braid::spawn(spin)).collect();
                                kids.into_iter()
                                    .for_each(|k| k.join().expect("a share strand"));
                            })
                            .expect("spawn")
                    })
                    .collect();
                roots
            }
        };
        let groups: Vec<_> = handles.iter().map(|h| h.group()).collect();
        for handle in handles {
            handle.join().expect("a share strand");
        }
        for group in groups {
            group.wait().expect("the bench is not cancelled");
        }
        tallies.map(|t| t.stats().total.runtime_ns as f64)
    });
    Ok(shares_of(cpu))
}

fn cgroup_shares(window: Duration, layout: Layout) -> Result<[f64; 3], Box<dyn Error>> {
    let members = layout.members();
    let root = std::path::Path::new("/sys/fs/cgroup/cpu");
    let dirs: Vec<_> = (0..3)
        .map(|g| root.join(format!("braid-share-{}-{g}", std::process::id())))
        .collect();
    let result = (|| -> Result<[f64; 3], Box<dyn Error>> {
        for (dir, weight) in dirs.iter().zip(WEIGHTS) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::write(dir.join("cpu.shares"), weight.to_string())?;
        }
        let start = Instant::now();
        let threads: Vec<_> = (0..3)
            .flat_map(|g| std::iter::repeat_n(g, members[g]))
            .map(|g| {
                let tasks = dirs[g].join("tasks");
                let root_tasks = root.join("tasks");
                std::thread::spawn(move || -> Result<(usize, f64), String> {
                    // SAFETY: plain system call without arguments.
                    let tid = unsafe { libc::gettid() };
                    std::fs::write(&tasks, tid.to_string())
                        .map_err(|e| format!("joining a group: {e}"))?;
                    let cpu = thread_cpu();
                    while start.elapsed() < window {
                        std::hint::spin_loop();
                    }
                    let used = thread_cpu() - cpu;
                    std::fs::write(&root_tasks, tid.to_string())
                        .map_err(|e| format!("leaving it: {e}"))?;
                    Ok((g, used))
                })
            })
            .collect();
        let mut cpu = [0.0; 3];
        for t in threads {
            let (group, used) = t.join().map_err(|_| "a share thread panicked")??;
            cpu[group] += used;
        }
        Ok(shares_of(cpu))
    })();
    for dir in &dirs {
        let _ = std::fs::remove_dir(dir);
    }
    result
}
