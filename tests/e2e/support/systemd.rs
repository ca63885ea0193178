//! A real systemd for the tests, booted as PID 1 of its own PID, mount,
//! UTS, IPC and cgroup namespaces (it needs root), sharing only the
//! machine's network and files. It sees no unit, generator or tmpfiles
//! rule of the machine: the directories holding them are covered by empty
//! ones and its unit path is the test's own directory, so it starts
//! nothing but what a test installs, and touches nothing of the machine
//! (`/run` is its own). Its console is a file, read into errors. Dropping
//! it kills the namespace with SIGKILL: a clean shutdown would run the
//! machine's shutdown steps.
//!
//! `systemctl` reaches it from inside its namespaces: [`Systemd::systemctl`]
//! enters them for the test, and a unit it runs (the agent) is inside them
//! already.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long a boot or a `systemctl` call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is looked at.
const POLL: Duration = Duration::from_millis(20);

/// The target systemd boots into: nothing but itself.
const TARGET: &str = "greenlight-bed.target";

/// Targets a unit written for a real machine names (a service depends on
/// `sysinit.target` and `basic.target` by default), here empty.
const TARGETS: [&str; 7] = [
    TARGET,
    "sysinit.target",
    "basic.target",
    "multi-user.target",
    "network.target",
    "network-online.target",
    "shutdown.target",
];

/// Run by `sh` as PID 1 of the new namespaces, then replaced by systemd.
const BOOT: &str = r#"set -eu
units=$1; empty=$2; console=$3
mount -t tmpfs -o mode=755 greenlight-bed /run
for d in /etc/systemd/system /usr/lib/systemd/system /usr/local/lib/systemd/system \
         /etc/systemd/user /usr/lib/systemd/user \
         /etc/tmpfiles.d /usr/lib/tmpfiles.d /usr/local/lib/tmpfiles.d \
         /usr/lib/systemd/system-generators /etc/systemd/system-generators \
         /usr/lib/systemd/system-environment-generators /etc/systemd/system-environment-generators \
         /usr/lib/systemd/system-shutdown /usr/lib/systemd/system-preset /etc/systemd/system-preset \
         /usr/lib/systemd/system-sleep; do
  if [ -d "$d" ]; then mount --bind "$empty" "$d"; fi
done
mount --bind "$units" /etc/systemd/system
mount --bind "$console" /dev/console
exec env -i SYSTEMD_UNIT_PATH="$units" SYSTEMD_GENERATOR_PATH="$empty" \
  SYSTEMD_ENVIRONMENT_GENERATOR_PATH="$empty" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /usr/lib/systemd/systemd --system --unit=greenlight-bed.target \
  --log-target=console --log-level=info --show-status=no
"#;

/// Run by `sh` on the machine: gives the namespaces a cgroup of their own
/// (so that systemd's slices do not meet another test bed's), then
/// unshares them.
const ENTER: &str = r#"set -eu
cgroup=$1; shift
if [ -n "$cgroup" ]; then mkdir -p "$cgroup"; echo $$ > "$cgroup/cgroup.procs"; fi
exec setpriv --pdeathsig KILL unshare --pid --fork --kill-child --mount --mount-proc \
  --propagation private --uts --ipc --cgroup "$@"
"#;

/// A booted systemd.
pub struct Systemd {
    /// The `unshare` process; systemd is its child.
    unshare: std::process::Child,
    /// systemd's pid, as the machine numbers it.
    pid: i32,
    cgroup: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// What a `systemctl` call said.
pub struct Said {
    pub ok: bool,
    pub out: String,
}

impl Systemd {
    /// Boots systemd with no unit but its target; panics naming what is
    /// missing when this machine cannot (systemd, util-linux, root).
    pub async fn boot() -> Systemd {
        let dir = tempfile::tempdir().unwrap();
        let units = dir.path().join("units");
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&units).unwrap();
        std::fs::create_dir_all(&empty).unwrap();
        for target in TARGETS {
            std::fs::write(
                units.join(target),
                "[Unit]\nDescription=Greenlight test bed\nDefaultDependencies=no\n",
            )
            .unwrap();
        }
        let console = dir.path().join("console.log");
        std::fs::write(&console, "").unwrap();
        std::fs::write(dir.path().join("boot.sh"), BOOT).unwrap();
        std::fs::write(dir.path().join("enter.sh"), ENTER).unwrap();
        assert!(
            Path::new("/usr/lib/systemd/systemd").is_file(),
            "the systemd test bed needs systemd (apt-get install systemd)"
        );
        let cgroup = cgroup_parent().map(|parent| {
            let mut random = [0u8; 6];
            getrandom::fill(&mut random).unwrap();
            parent.join(format!("greenlight-bed-{}", hex::encode(random)))
        });
        // Spawned from the test's own thread: the parent-death signal
        // follows the thread that spawned it.
        let unshare = std::process::Command::new("sh")
            .arg(dir.path().join("enter.sh"))
            .arg(cgroup.as_deref().unwrap_or(Path::new("")))
            .arg("sh")
            .arg(dir.path().join("boot.sh"))
            .args([&units, &empty, &console])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("enter.log")).unwrap())
            .spawn()
            .expect("the systemd test bed needs sh, setpriv and unshare (util-linux)");
        let mut this = Systemd {
            unshare,
            pid: 0,
            cgroup,
            dir,
        };
        this.pid = this.await_pid1().await;
        this.await_running().await;
        this
    }

    /// The pid of the child of `unshare`, once systemd runs as it.
    async fn await_pid1(&mut self) -> i32 {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let parent = self.unshare.id();
        loop {
            let children = format!("/proc/{parent}/task/{parent}/children");
            let pid = std::fs::read_to_string(children)
                .ok()
                .and_then(|text| text.split_whitespace().next()?.parse::<i32>().ok());
            if let Some(pid) = pid {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    return pid;
                }
            }
            if let Ok(Some(status)) = self.unshare.try_wait() {
                panic!(
                    "the systemd test bed did not boot ({status}; it needs root): {}",
                    self.logs()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "systemd did not start: {}",
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn await_running(&self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let said = self.systemctl(&["is-system-running"]).await;
            if matches!(said.out.trim(), "running" | "degraded") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "systemd is not running: {}\n{}",
                said.out,
                self.logs()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Where unit files go (then `systemctl daemon-reload`).
    pub fn units(&self) -> PathBuf {
        self.dir.path().join("units")
    }

    /// Runs `systemctl ARGS` inside the namespaces.
    pub async fn systemctl(&self, args: &[&str]) -> Said {
        let run = tokio::process::Command::new("nsenter")
            .arg("--target")
            .arg(self.pid.to_string())
            .args(["--mount", "--pid", "--", "systemctl", "--no-pager"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(TIMEOUT, run)
            .await
            .unwrap_or_else(|_| panic!("systemctl {args:?} took over {TIMEOUT:?}"))
            .expect("nsenter (util-linux)");
        Said {
            ok: output.status.success(),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }

    /// `systemctl ARGS`, which must succeed; its output.
    pub async fn must(&self, args: &[&str]) -> String {
        let said = self.systemctl(args).await;
        assert!(said.ok, "systemctl {args:?}: {}\n{}", said.out, self.logs());
        said.out
    }

    /// A property of a unit, as `systemctl show -P` gives it.
    pub async fn property(&self, unit: &str, name: &str) -> String {
        self.must(&["show", "-P", name, unit])
            .await
            .trim()
            .to_string()
    }

    /// The pid of a unit's main process, as the machine numbers it (so the
    /// test can look at it in `/proc`), or `None` while it has none.
    pub async fn main_pid(&self, unit: &str) -> Option<i32> {
        let cgroup = self.property(unit, "ControlGroup").await;
        let inner: i32 = self.property(unit, "MainPID").await.parse().ok()?;
        if inner == 0 || cgroup.is_empty() {
            return None;
        }
        // The machine's pid whose innermost namespaced pid is `inner`.
        let entries = std::fs::read_dir("/proc").ok()?;
        entries.flatten().find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let nspid = status.lines().find(|l| l.starts_with("NSpid:"))?;
            let ids: Vec<i32> = nspid[6..]
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect();
            let in_box = ids.len() >= 2 && ids[ids.len() - 1] == inner;
            (in_box && self.contains(pid)).then_some(pid)
        })
    }

    /// Whether process `pid` lives in this systemd's PID namespace.
    fn contains(&self, pid: i32) -> bool {
        let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        ns(pid).is_some() && ns(pid) == ns(self.pid)
    }

    /// systemd's console, then `unshare`'s errors.
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let console = read("console.log");
        let lines: Vec<&str> = console.lines().collect();
        format!(
            "systemd's console (last lines):\n{}\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n"),
            read("enter.log")
        )
    }
}

/// Where this machine's systemd cgroup hierarchy is, if it has one a test
/// bed can nest in.
fn cgroup_parent() -> Option<PathBuf> {
    ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.procs").is_file())
}

impl Drop for Systemd {
    fn drop(&mut self) {
        // SIGKILL to `unshare` kills systemd (`--kill-child`), which ends
        // every process of its PID namespace.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        let deadline = std::time::Instant::now() + TIMEOUT;
        while self.pid != 0
            && Path::new(&format!("/proc/{}", self.pid)).exists()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(POLL);
        }
        if let Some(cgroup) = &self.cgroup {
            remove_cgroup(cgroup);
        }
    }
}

/// Removes an (emptied) cgroup and those under it, deepest first.
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
