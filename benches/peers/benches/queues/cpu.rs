//! CPU time spent by the client and by the server, from `/proc`: on a shared machine a
//! drain's wall time moves with other work, its CPU time much less.

use std::time::Duration;

/// CPU time used so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    /// This process and the children it has waited for (the peers' scripts).
    pub client: Duration,
    /// The postmaster, its live processes and those it has reaped.
    pub server: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            client: self.client.saturating_sub(earlier.client),
            server: self.server.saturating_sub(earlier.server),
        }
    }
}

/// utime, stime, cutime, cstime and the parent of `/proc/<pid>/stat`, in clock ticks.
fn stat(pid: &str) -> Option<([u64; 4], u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces; the fields after it do not.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(([tick(11), tick(12), tick(13), tick(14)], tick(1) as u32))
}

fn ticks(t: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(t * 1_000_000 / per_second)
}

/// Now, for the server whose postmaster is `postmaster` (`None`: the client only).
pub fn now(postmaster: Option<u32>) -> Cpu {
    let client = stat("self").map_or(0, |(t, _)| t.iter().sum());
    let server = postmaster.map_or(0, |postmaster| {
        let own = stat(&postmaster.to_string()).map_or(0, |(t, _)| t.iter().sum());
        let children: u64 = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.parse::<u32>().ok()?;
                let (t, parent) = stat(&name)?;
                (parent == postmaster).then_some(t[0] + t[1])
            })
            .sum();
        own + children
    });
    Cpu {
        client: ticks(client),
        server: ticks(server),
    }
}
