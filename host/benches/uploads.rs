//! What concurrent plugin uploads cost in memory: the daemon's peak
//! resident memory (VmHWM) grown by one upload just under the size limit,
//! against eight such uploads sent at once, each on a fresh daemon process.
//! Run with the default `max_concurrent_uploads` (2: the others wait,
//! unread) and with 8 (every body read at once, as before uploads took
//! turns), in one run. Prints the growth of each and the ratio of eight to
//! one.

use std::path::Path;

mod process;

use process::Daemon;

const CONCURRENT: usize = 8;
const LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// The no-std fixture check padded with a custom section to just under the
/// upload limit.
fn padded_component() -> anyhow::Result<Vec<u8>> {
    let path = Path::new(env!("GREENLIGHT_PLUGINS_DIR")).join("fixture_no_std_check.wasm");
    let mut bytes = std::fs::read(path)?;
    let name = b"padding";
    let payload = LIMIT_BYTES - bytes.len() - 64 * 1024;
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + payload, 0);
    bytes.push(0); // a custom section
    let mut size = section.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    Ok(bytes)
}

/// A daemon whose uploads take `max_concurrent_uploads` turns.
fn daemon(max_concurrent_uploads: u32) -> anyhow::Result<Daemon> {
    Daemon::start(&format!(
        "[plugins]\nmax_concurrent_uploads = {max_concurrent_uploads}\n"
    ))
}

/// A line of the daemon's /proc status, in KiB.
fn status_kib(daemon: &Daemon, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id()))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {field} in /proc status"))
}

/// Peak resident memory grown by `uploads` uploads sent at once, MiB.
async fn growth(daemon: &Daemon, component: &[u8], uploads: usize) -> anyhow::Result<f64> {
    let before = status_kib(daemon, "VmRSS:")?;
    let http = reqwest::Client::new();
    let mut sends = Vec::new();
    for i in 0..uploads {
        let request = http
            .post(format!(
                "{}/api/v1/plugins?name=big{i}&version=1.0.0",
                daemon.base
            ))
            .bearer_auth(&daemon.token)
            .body(component.to_vec());
        sends.push(tokio::spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            anyhow::ensure!(status.is_success(), "{status}: {}", response.text().await?);
            anyhow::Ok(())
        }));
    }
    for send in sends {
        send.await??;
    }
    let peak = status_kib(daemon, "VmHWM:")?;
    Ok(peak.saturating_sub(before) as f64 / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let component = padded_component()?;
    println!(
        "Peak daemon memory grown by uploads of {:.1} MiB (limit {} MiB)",
        component.len() as f64 / (1024.0 * 1024.0),
        LIMIT_BYTES / (1024 * 1024)
    );
    println!(
        "  {:<28} {:>10} {:>12} {:>8}",
        "max_concurrent_uploads", "1 upload", "8 at once", "ratio"
    );
    for turns in [2, CONCURRENT as u32] {
        let one = growth(&daemon(turns)?, &component, 1).await?;
        let many = growth(&daemon(turns)?, &component, CONCURRENT).await?;
        println!(
            "  {:<28} {:>7.0} MiB {:>8.0} MiB {:>8.2}",
            turns,
            one,
            many,
            many / one
        );
    }
    Ok(())
}
