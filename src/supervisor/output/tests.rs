use std::process::{Command, Stdio};

use super::*;
use crate::msg::output::TAIL_MAX_LINES;
use crate::supervisor::test_support::{local_config, wait_for};

/// `sh -c script` with its stdout and stderr read by `thread` into `activity`'s tail; also the inode
/// numbers of its two pipes.
fn run_captured(
    thread: &mut OutputThread,
    activity: &Arc<Activity>,
    script: &str,
) -> (Child, Vec<u64>) {
    let sink = thread.sink(&local_config(1, "sh", &[]), 0, activity.clone());
    assert!(sink.captures());
    let mut child = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inodes = vec![
        nix::sys::stat::fstat(child.stdout.as_ref().unwrap())
            .unwrap()
            .st_ino,
        nix::sys::stat::fstat(child.stderr.as_ref().unwrap())
            .unwrap()
            .st_ino,
    ];
    attach_child(&sink, &mut child);
    (child, inodes)
}

/// Whether this process still has a descriptor on the pipe with inode `inode`.
fn holds_pipe(inode: u64) -> bool {
    let wanted = format!("pipe:[{inode}]");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|target| target.to_string_lossy() == wanted)
}

fn texts(activity: &Activity, stream: Stream) -> Vec<String> {
    activity
        .output()
        .0
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.text.to_string())
        .collect()
}

#[test]
fn both_streams_reach_the_tail_in_order_and_the_pipes_are_closed_at_their_end() {
    let mut thread = OutputThread::default();
    let activity = Arc::new(Activity::default());
    let script = "echo one; echo oops >&2; echo two; printf 'no newline'; printf 'err\\nlast' >&2";
    let (mut child, inodes) = run_captured(&mut thread, &activity, script);
    assert!(child.wait().unwrap().success());
    let closed = wait_for(Duration::from_secs(10), || {
        inodes.iter().all(|&i| !holds_pipe(i)).then_some(())
    });
    assert!(closed.is_some(), "the pipes are still open");
    assert_eq!(
        texts(&activity, Stream::Stdout),
        vec!["one", "two", "no newline"]
    );
    assert_eq!(
        texts(&activity, Stream::Stderr),
        vec!["oops", "err", "last"]
    );
    thread.close();
}

#[test]
fn a_flood_is_drained_as_fast_as_it_is_written_and_the_tail_stays_bounded() {
    let mut thread = OutputThread::default();
    let activity = Arc::new(Activity::default());
    let flood = "i=0; while [ $i -lt 20 ]; do seq 1 20000; i=$((i+1)); done; echo end";
    let (mut child, _) = run_captured(&mut thread, &activity, flood);
    let exited = wait_for(Duration::from_secs(60), || child.try_wait().unwrap());
    assert!(exited.is_some(), "the writer was blocked");
    let ended = wait_for(Duration::from_secs(10), || {
        texts(&activity, Stream::Stdout)
            .last()
            .is_some_and(|l| l == "end")
            .then_some(())
    });
    assert!(ended.is_some());
    let (lines, _) = activity.output();
    assert_eq!(lines.len(), TAIL_MAX_LINES);
    assert_eq!(lines[lines.len() - 2].text.as_ref(), "20000");
    thread.close();
}

#[test]
fn containers_and_external_backends_start_no_thread() {
    let mut thread = OutputThread::default();
    let mut config = local_config(1, "sh", &[]);
    config.kind = BackendKind::External;
    let sink = thread.sink(&config, 0, Arc::default());
    assert!(!sink.captures());
    assert!(thread.mailbox.is_none());
}
