use super::*;
use crate::supervisor::docker::fake_daemon::{Answer, FakeDaemon};

fn connect(daemon: &FakeDaemon) -> Docker {
    Docker::connect(daemon.endpoint()).unwrap()
}

#[test]
fn image_references_split_into_name_and_tag() {
    assert_eq!(image_and_tag("app"), ("app", "latest"));
    assert_eq!(image_and_tag("app:1.2"), ("app", "1.2"));
    assert_eq!(
        image_and_tag("reg:5000/team/app"),
        ("reg:5000/team/app", "latest")
    );
    assert_eq!(image_and_tag("reg:5000/app:v1"), ("reg:5000/app", "v1"));
    assert_eq!(image_and_tag("app@sha256:abc"), ("app@sha256:abc", ""));
    assert_eq!(image_and_tag(""), ("", "latest"));
    assert_eq!(image_and_tag(":"), ("", ""));
}

#[test]
fn encoding_keeps_only_unreserved_characters() {
    assert_eq!(encode("a-b_c.d~9"), "a-b_c.d~9");
    assert_eq!(encode("reg:5000/app"), "reg%3A5000%2Fapp");
    assert_eq!(encode("é"), "%C3%A9");
}

#[test]
fn image_presence_is_a_404_or_not() {
    let daemon = FakeDaemon::start("api-image", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        "/v1.41/images/here%3A1/json" => Answer::json(200, "{}"),
        "/v1.41/images/broken/json" => Answer::json(500, r#"{"message":"disk on fire"}"#),
        _ => Answer::json(404, r#"{"message":"No such image"}"#),
    });
    let docker = connect(&daemon);
    assert_eq!(docker.image_present("here:1"), Ok(true));
    assert_eq!(docker.image_present("gone:1"), Ok(false));
    let error = docker.image_present("broken").unwrap_err();
    assert_eq!(error.to_string(), "disk on fire (HTTP 500)");
}

#[test]
fn a_pull_fails_on_an_error_inside_the_stream() {
    let daemon = FakeDaemon::start("api-pull", |r| {
        match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        t if t.contains("fromImage=good") => Answer::json(
            200,
            "{\"status\":\"Pulling from library/good\"}\n{\"status\":\"Downloaded newer image\"}\n",
        ),
        t if t.contains("fromImage=denied") => Answer::json(
            404,
            r#"{"message":"pull access denied for denied, repository does not exist"}"#,
        ),
        _ => Answer::json(
            200,
            "{\"status\":\"Pulling\"}\n{\"errorDetail\":{\"message\":\"dial tcp: lookup registry: no such host\"},\"error\":\"dial tcp: lookup registry: no such host\"}\n",
        ),
    }
    });
    let docker = connect(&daemon);
    let timeout = Duration::from_secs(5);
    assert_eq!(docker.pull("good", timeout), Ok(()));
    let error = docker.pull("offline:2", timeout).unwrap_err();
    assert_eq!(
        error,
        DockerError::Failed("dial tcp: lookup registry: no such host".into())
    );
    let error = docker.pull("denied", timeout).unwrap_err();
    assert_eq!(error.status(), Some(404));
    let targets: Vec<String> = daemon.calls();
    assert!(
        targets.contains(&"POST /v1.41/images/create?fromImage=good&tag=latest".to_string()),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"POST /v1.41/images/create?fromImage=offline&tag=2".to_string()),
        "{targets:?}"
    );
}

#[test]
fn an_oversized_progress_line_is_skipped_not_kept() {
    let daemon = FakeDaemon::start("api-pull-long", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        _ => {
            let mut body = format!("{{\"status\":\"{}\"}}\n", "p".repeat(200_000));
            body.push_str("{\"error\":\"late failure\"}\n");
            Answer::json(200, &body)
        }
    });
    let error = connect(&daemon)
        .pull("x", Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(error, DockerError::Failed("late failure".into()));
}

#[test]
fn stop_kill_and_remove_accept_already_done() {
    let daemon = FakeDaemon::start("api-done", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        t if t.ends_with("/stop?t=3") => Answer::empty(304),
        t if t.ends_with("/kill") => Answer::json(409, r#"{"message":"is not running"}"#),
        t if t.contains("?force=1") => Answer::json(404, r#"{"message":"No such container"}"#),
        _ => Answer::json(500, r#"{"message":"unexpected"}"#),
    });
    let docker = connect(&daemon);
    assert_eq!(docker.stop("c1", Duration::from_secs(3)), Ok(()));
    assert_eq!(docker.kill("c1"), Ok(()));
    assert_eq!(docker.remove("c1"), Ok(()));
    assert!(docker.start("c1").is_err());
    assert_eq!(
        daemon.calls(),
        vec![
            "POST /v1.41/containers/c1/stop?t=3",
            "POST /v1.41/containers/c1/kill",
            "DELETE /v1.41/containers/c1?force=1&v=1",
            "POST /v1.41/containers/c1/start",
        ]
    );
}

#[test]
fn create_wait_and_inspect_read_their_replies() {
    let daemon = FakeDaemon::start("api-create", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        "/v1.41/containers/create?name=web" => {
            Answer::json(201, r#"{"Id":"c0ffee","Warnings":[]}"#)
        }
        "/v1.41/containers/create?name=odd" => Answer::json(201, r#"{"Warnings":[]}"#),
        "/v1.41/containers/c0ffee/wait?condition=not-running" => {
            Answer::json(200, r#"{"Error":null,"StatusCode":137}"#)
        }
        "/v1.41/containers/c0ffee/json" => Answer::json(200, r#"{"Id":"c0ffee"}"#),
        _ => Answer::json(404, r#"{"message":"No such container"}"#),
    });
    let docker = connect(&daemon);
    assert_eq!(docker.create("web", "{}"), Ok("c0ffee".to_string()));
    assert!(matches!(
        docker.create("odd", "{}"),
        Err(DockerError::Broken(_))
    ));
    assert_eq!(docker.wait("c0ffee"), Ok(137));
    let inspected = docker.inspect("c0ffee").unwrap().unwrap();
    assert_eq!(inspected.str_at("Id"), Some("c0ffee"));
    assert_eq!(docker.inspect("nothing"), Ok(None));
}

#[test]
fn the_managed_list_is_filtered_by_label_and_read_defensively() {
    let daemon = FakeDaemon::start("api-list", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        _ => Answer::json(
            200,
            r#"[{"Id":"a1","Names":["/spawngate-x"],"Labels":{"spawngate.managed":"true"}},
                {"Id":"b2","Names":[]},{"Names":["/no-id"]},7]"#,
        ),
    });
    let docker = connect(&daemon);
    let listed = docker.list_managed().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        ("a1", "spawngate-x")
    );
    assert_eq!(listed[1].name, "b2");
    assert!(listed[1].labels.is_none());
    let call = &daemon.calls()[0];
    assert!(
        call.starts_with("GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22spawngate.managed%3Dtrue%22%5D%7D"),
        "{call}"
    );
}
