//! One `[pools.NAME]`'s balancing, scaling, reload and health mistakes, each with its line and key path
//! (`pool_errors.rs` has names, instance keys and placeholders).

use super::{assert_error, errors, ok, single_error};

#[test]
fn strategy_and_hashing_mistakes() {
    let pool = |keys: &str| format!("[pools.web]\ncommand = \"x\"\nport = 7000\n{keys}\n");
    single_error(
        &pool("strategy = \"fastest\""),
        4,
        "pools.web.strategy",
        "must be one of least_conn, round_robin",
    );
    single_error(
        &pool("strategy = \"hash\""),
        4,
        "pools.web.strategy",
        "needs hash_on",
    );
    single_error(
        &pool("strategy = \"hash\"\nhash_on = \"header:\""),
        5,
        "pools.web.hash_on",
        "must be ip, path, header:NAME",
    );
    single_error(
        &pool("strategy = \"ip_hash\"\nhash_on = \"path\""),
        5,
        "pools.web.hash_on",
        "ip_hash always hashes the client's address",
    );
    single_error(
        &pool("hash_on = \"ip\""),
        4,
        "pools.web.hash_on",
        "only for strategy = \"hash\"",
    );
    for factor in [100, 1001] {
        single_error(
            &pool(&format!(
                "strategy = \"ip_hash\"\nhash_balance_factor = {factor}"
            )),
            5,
            "pools.web.hash_balance_factor",
            "must be between 101 and 1000",
        );
    }
    single_error(
        &pool("strategy = \"hash\"\nhash_on = \"ip\"\nhash_over = \"all\""),
        6,
        "pools.web.hash_over",
        "must be \"ready\" or \"slots\"",
    );
    single_error(
        &pool("strategy = \"hash\"\nhash_on = \"ip\"\nhash_over = \"slots\"\nhash_balance_factor = 150"),
        7,
        "pools.web.hash_balance_factor",
        "bounded load needs hash_over = \"ready\"",
    );
    // Every mistake at once.
    let found = errors(&pool("strategy = \"hash\"\nhash_over = \"all\""));
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn reload_is_next_start_or_rolling() {
    for reload in ["next_start", "rolling"] {
        ok(&format!(
            "[pools.web]\ncommand = \"x\"\nport = 7000\nreload = \"{reload}\"\n"
        ));
    }
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nreload = \"blue_green\"\n",
        4,
        "pools.web.reload",
        "must be \"next_start\" or \"rolling\"",
    );
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nscale_down_delay_secs = 0\n",
        4,
        "pools.web.scale_down_delay_secs",
        "between 1 and 86400",
    );
}

#[test]
fn health_is_http_tcp_or_process() {
    for health in ["http", "tcp", "process"] {
        let text = format!("[pools.web]\ncommand = \"x\"\nport = 7000\nhealth = \"{health}\"\n");
        ok(&text);
    }
    single_error(
        "[pools.web]\ncommand = \"x\"\nport = 7000\nhealth = \"ping\"\n",
        4,
        "pools.web.health",
        "must be \"http\", \"tcp\" or \"process\"",
    );
}

#[test]
fn scaling_mistakes() {
    let pool =
        |keys: &str| format!("[pools.web]\ncommand = \"x\"\nport = 7000\nreplicas = 4\n{keys}\n");
    single_error(
        &pool("min_running = 3\nmax_running = 2"),
        5,
        "pools.web.min_running",
        "is more than max_running (2)",
    );
    single_error(
        &pool("max_running = 5"),
        5,
        "pools.web.max_running",
        "must be between 1 and 4, found 5",
    );
    single_error(
        &pool("min_running = 5"),
        5,
        "pools.web.min_running",
        "must be between 0 and 4, found 5",
    );
    let found = errors(&pool("always_on = true\nmin_running = 1\nmax_running = 2"));
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_error(
        &found,
        6,
        "pools.web.min_running",
        "always_on runs every instance",
    );
    assert_error(
        &found,
        7,
        "pools.web.max_running",
        "always_on runs every instance",
    );
    single_error(
        &pool("target_in_flight = 8\nmax_in_flight = 4"),
        6,
        "pools.web.max_in_flight",
        "is below target_in_flight",
    );
    for secs in [0, 3601] {
        single_error(
            &pool(&format!("queue_timeout_secs = {secs}")),
            5,
            "pools.web.queue_timeout_secs",
            "must be between 1 and 3600",
        );
    }
    single_error(
        &pool("wake = \"some\""),
        5,
        "pools.web.wake",
        "must be \"one\" or \"all\", found \"some\"",
    );
    // Every mistake at once.
    let found = errors(&pool("min_running = 9\nmax_in_flight = 0\nwake = 1"));
    assert_eq!(found.len(), 3, "{found:#?}");
}
