use std::path::Path;
use std::time::Duration;

use super::*;
use crate::supervisor::output::PROCESS_TARGET;
use crate::supervisor::test_support::{scratch_file, wait_for};

/// Output to the test's own stdout and stderr, as before there were pipes.
fn inherit() -> OutputSink {
    OutputSink::inherit("test", PROCESS_TARGET)
}

fn shell(script: &str) -> LocalSpec {
    LocalSpec {
        command: "sh".to_string(),
        args: vec!["-c".to_string(), script.to_string()],
        working_dir: None,
    }
}

/// True when the pid no longer names a live process (gone, or a zombie nobody has reaped yet).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_exit(process: &mut ProcessInstance) -> String {
    wait_for(Duration::from_secs(5), || process.poll_exit()).expect("the process should exit")
}

#[test]
fn sigterm_stops_and_the_exit_is_reaped() {
    let mut process =
        ProcessInstance::spawn(&shell("exec sleep 30"), &[], None, &inherit()).unwrap();
    let pid = process.pid();
    assert!(process.poll_exit().is_none(), "still running");
    process.signal_group(Signal::SIGTERM);
    assert_eq!(wait_exit(&mut process), "signal SIGTERM");
    assert!(!exists(pid), "reaped: no zombie left in /proc");
    assert!(process.poll_exit().is_none(), "an exit is reported once");
}

#[test]
fn sigkill_ends_a_process_that_ignores_sigterm() {
    let ready = scratch_file("trap-ready");
    let script = format!("trap '' TERM; touch {}; sleep 30", ready.display());
    let mut process = ProcessInstance::spawn(&shell(&script), &[], None, &inherit()).unwrap();
    wait_for(Duration::from_secs(5), || ready.exists().then_some(())).expect("trap installed");
    process.signal_group(Signal::SIGTERM);
    let ignored = wait_for(Duration::from_millis(200), || process.poll_exit());
    assert_eq!(ignored, None, "SIGTERM is ignored");
    process.signal_group(Signal::SIGKILL);
    assert_eq!(wait_exit(&mut process), "signal SIGKILL");
    let _ = std::fs::remove_file(ready);
}

#[test]
fn grandchildren_die_with_the_group_when_the_leader_exits() {
    let pid_file = scratch_file("grandchild-pid");
    let script = format!("sleep 30 & echo $! > {}; exec sleep 30", pid_file.display());
    let mut process = ProcessInstance::spawn(&shell(&script), &[], None, &inherit()).unwrap();
    let grandchild: u32 = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
    })
    .expect("grandchild pid written");
    assert!(!is_dead(grandchild));
    // Only the leader is killed; the group kill on its exit must take the grandchild along.
    let leader = Pid::from_raw(process.pid() as i32);
    nix::sys::signal::kill(leader, Signal::SIGKILL).unwrap();
    assert_eq!(wait_exit(&mut process), "signal SIGKILL");
    assert!(
        wait_for(Duration::from_secs(5), || is_dead(grandchild).then_some(())).is_some(),
        "grandchild {grandchild} outlived its group"
    );
    let _ = std::fs::remove_file(pid_file);
}

#[test]
fn the_backend_dies_with_the_thread_that_spawned_it() {
    let spawner = std::thread::spawn(|| {
        ProcessInstance::spawn(&shell("exec sleep 30"), &[], None, &inherit()).unwrap()
    });
    let mut process = spawner.join().unwrap();
    assert_eq!(wait_exit(&mut process), "signal SIGKILL");
}

#[test]
fn dropping_the_handle_kills_and_reaps() {
    let process = ProcessInstance::spawn(&shell("exec sleep 30"), &[], None, &inherit()).unwrap();
    let pid = process.pid();
    drop(process);
    assert!(!exists(pid));
}

#[test]
fn env_and_working_dir_reach_the_process() {
    let out = scratch_file("env-out");
    let mut spec = shell(&format!("echo \"$GREETING $(pwd)\" > {}", out.display()));
    spec.working_dir = Some(std::env::temp_dir());
    let env = vec![("GREETING".to_string(), "hello".to_string())];
    let mut process = ProcessInstance::spawn(&spec, &env, None, &inherit()).unwrap();
    assert_eq!(wait_exit(&mut process), "status 0");
    let text = std::fs::read_to_string(&out).unwrap();
    let expected_dir = std::env::temp_dir().canonicalize().unwrap();
    assert_eq!(text.trim(), format!("hello {}", expected_dir.display()));
    let _ = std::fs::remove_file(out);
}

#[test]
fn exit_status_is_described() {
    let mut process = ProcessInstance::spawn(&shell("exit 3"), &[], None, &inherit()).unwrap();
    assert_eq!(wait_exit(&mut process), "status 3");
}

#[test]
fn a_missing_program_is_a_spawn_error_naming_it() {
    let spec = LocalSpec {
        command: "/nonexistent/spawngate-backend".to_string(),
        args: Vec::new(),
        working_dir: None,
    };
    let why = ProcessInstance::spawn(&spec, &[], None, &inherit()).unwrap_err();
    assert!(why.contains("/nonexistent/spawngate-backend"), "{why}");
    assert!(why.contains("No such file"), "{why}");
}

#[test]
fn a_socket_activated_process_gets_descriptor_3_and_its_own_pid_as_listen_pid() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let listener = super::super::activation::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = std::net::TcpListener::from(listener);
    let port = listener.local_addr().unwrap().port();
    let listener = std::os::fd::OwnedFd::from(listener);
    // A client connects before the program runs: it waits in the backlog.
    let mut early = TcpStream::connect(("127.0.0.1", port)).unwrap();
    early.write_all(b"ping").unwrap();
    let out = scratch_file("activation-env");
    // `$$` is the shell's own pid, which must be LISTEN_PID; fd 3 must be a socket.
    let script = format!(
        "echo \"$$ $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES $(readlink /proc/self/fd/3 | cut -c1-7)\" > {}",
        out.display()
    );
    let mut process =
        ProcessInstance::spawn(&shell(&script), &[], Some(listener), &inherit()).unwrap();
    assert_eq!(wait_exit(&mut process), "status 0");
    let text = std::fs::read_to_string(&out).unwrap();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{text}");
    assert_eq!(fields[0], process.pid().to_string());
    assert_eq!(fields[1], fields[0], "LISTEN_PID is the program's own pid");
    assert_eq!(&fields[2..], ["1", "http", "socket:"]);
    // Reaped: the supervisor's copy is closed, so the waiting client is let go rather than left hanging.
    early
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = early.read_to_end(&mut rest);
    assert!(ended.is_ok() || ended.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset));
    let _ = std::fs::remove_file(out);
}

#[test]
fn a_socket_activated_missing_program_is_still_a_spawn_error() {
    let listener = super::super::activation::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
    let spec = LocalSpec {
        command: "no-such-spawngate-backend".to_string(),
        args: Vec::new(),
        working_dir: None,
    };
    let why = ProcessInstance::spawn(&spec, &[], Some(listener), &inherit()).unwrap_err();
    assert!(why.contains("no-such-spawngate-backend"), "{why}");
    let spec = LocalSpec {
        command: "/nonexistent/backend".to_string(),
        args: Vec::new(),
        working_dir: None,
    };
    let listener = super::super::activation::bind_listener("127.0.0.1:0".parse().unwrap()).unwrap();
    let why = ProcessInstance::spawn(&spec, &[], Some(listener), &inherit()).unwrap_err();
    assert!(why.contains("No such file"), "{why}");
}
