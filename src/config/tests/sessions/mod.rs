//! `[sessions.NAME]` and `admin_token_file`: each key's values and defaults (`good`), one template's
//! mistakes (`errors`, `instance_errors`), the checks across templates and the rest of the file
//! (`clashes`), and the admin token (`admin_token`).

mod admin_token;
mod clashes;
mod errors;
mod good;
mod instance_errors;

use crate::config::sessions::SessionTemplate;
use crate::config::Config;

/// The smallest template: a local process. Its keys are on lines 2 to 5.
const MINIMAL: &str = r#"
[sessions.nb]
hostname = "{id}.nb.example.com"
host_ports = "20000-20999"
command = "notebook"
"#;

/// `MINIMAL` with `extra` appended to the template (from line 6 on).
fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

fn template<'c>(config: &'c Config, name: &str) -> &'c SessionTemplate {
    config
        .sessions
        .iter()
        .find(|t| t.name == name)
        .expect("the template")
}
