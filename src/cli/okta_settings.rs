//! The Okta settings, merged the way the official Okta SDKs merge them: `~/.okta/okta.yaml`,
//! then `./.okta/okta.yaml` in the working directory, then environment variables, then
//! command-line flags, each overriding the one before. Everything ends up under the SDKs'
//! variable names (`okta.client.orgUrl` is `OKTA_CLIENT_ORGURL`), which is what
//! [`OktaConfig::from_env_map`] reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use connectors::okta::OktaConfig;
use yaml_serde::Value;

use super::error::CliError;

/// Settings from the `okta.yaml` files, by variable name.
#[derive(Default)]
pub struct OktaYaml {
    values: BTreeMap<String, String>,
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for OktaYaml {
    // Values can hold the API token or a private key: list the names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaYaml")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("files", &self.files)
            .finish()
    }
}

impl OktaYaml {
    /// Reads `HOME/.okta/okta.yaml` and then `CWD/.okta/okta.yaml`, the later file winning.
    /// Missing files are skipped; a file that does not parse is an error naming it.
    pub fn load(home: Option<&Path>, cwd: &Path) -> Result<OktaYaml, CliError> {
        let mut yaml = OktaYaml::default();
        let candidates = home
            .map(|h| h.join(".okta").join("okta.yaml"))
            .into_iter()
            .chain(std::iter::once(cwd.join(".okta").join("okta.yaml")));
        for path in candidates {
            if !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            yaml.merge(&path, &text)?;
        }
        Ok(yaml)
    }

    /// Adds the settings of one file's text (overriding earlier ones).
    pub fn merge(&mut self, path: &Path, text: &str) -> Result<(), CliError> {
        let doc: Value = yaml_serde::from_str(text).map_err(|e| CliError::OktaYaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        match doc {
            Value::Null => {}
            Value::Mapping(_) => flatten("", &doc, &mut self.values),
            _ => {
                return Err(CliError::OktaYaml {
                    path: path.to_path_buf(),
                    message: "the top level must be a mapping (`okta: { client: ... }`)".into(),
                })
            }
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// The value of variable `name` (e.g. `OKTA_CLIENT_ORGURL`), if a file set it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

/// `okta: {client: {orgUrl: x}}` becomes `OKTA_CLIENT_ORGURL = x`; lists (scopes) are joined
/// with commas; nulls are left out.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let key = match key {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                let name = if prefix.is_empty() {
                    key.to_ascii_uppercase()
                } else {
                    format!("{prefix}_{}", key.to_ascii_uppercase())
                };
                flatten(&name, child, out);
            }
        }
        Value::Sequence(items) => {
            let parts: Vec<String> = items.iter().filter_map(scalar).collect();
            out.insert(prefix.to_owned(), parts.join(","));
        }
        Value::Tagged(tagged) => flatten(prefix, &tagged.value, out),
        other => {
            if let Some(text) = scalar(other) {
                out.insert(prefix.to_owned(), text);
            }
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Flags given on the command line (they already include the environment, via clap).
#[derive(Default)]
pub struct OktaFlags {
    /// `--org-url` / `OKTA_CLIENT_ORGURL`.
    pub org_url: Option<String>,
    /// `--token` / `OKTA_CLIENT_TOKEN`.
    pub token: Option<String>,
}

/// Builds the client configuration: flags, then environment, then `okta.yaml`.
pub fn okta_config(
    flags: &OktaFlags,
    env: impl Fn(&str) -> Option<String>,
    yaml: &OktaYaml,
) -> Result<OktaConfig, CliError> {
    let lookup = |name: &str| {
        let flag = match name {
            "OKTA_CLIENT_ORGURL" => flags.org_url.clone(),
            "OKTA_CLIENT_TOKEN" => flags.token.clone(),
            _ => None,
        };
        flag.filter(|v| !v.trim().is_empty())
            .or_else(|| env(name).filter(|v| !v.trim().is_empty()))
            .or_else(|| yaml.get(name).map(str::to_owned))
    };
    Ok(OktaConfig::from_env_map(lookup)?)
}

/// The settings of the current process: `$HOME` and the working directory.
pub fn load_for_process() -> Result<OktaYaml, CliError> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from);
    let cwd = std::env::current_dir().map_err(|source| CliError::Read {
        path: PathBuf::from("."),
        source,
    })?;
    OktaYaml::load(home.as_deref(), &cwd)
}

#[cfg(test)]
mod tests {
    use connectors::okta::Credentials;

    use super::*;

    const FILE: &str = "
okta:
  client:
    orgUrl: https://from-yaml.okta.com
    token: yaml-token
    authorizationMode: SSWS
    scopes:
      - okta.users.read
      - okta.groups.read
    rateLimit:
      maxRetries: 7
  testing:
    testingDisableHttpsCheck: true
";

    fn yaml(text: &str) -> OktaYaml {
        let mut y = OktaYaml::default();
        y.merge(Path::new("okta.yaml"), text).unwrap();
        y
    }

    #[test]
    fn nested_keys_become_sdk_variable_names() {
        let y = yaml(FILE);
        assert_eq!(
            y.get("OKTA_CLIENT_ORGURL"),
            Some("https://from-yaml.okta.com")
        );
        assert_eq!(y.get("OKTA_CLIENT_AUTHORIZATIONMODE"), Some("SSWS"));
        assert_eq!(
            y.get("OKTA_CLIENT_SCOPES"),
            Some("okta.users.read,okta.groups.read")
        );
        assert_eq!(y.get("OKTA_CLIENT_RATELIMIT_MAXRETRIES"), Some("7"));
        assert_eq!(y.get("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"), Some("true"));
    }

    #[test]
    fn later_file_overrides_earlier_and_environment_overrides_files() {
        let mut y = yaml(FILE);
        y.merge(
            Path::new("project/.okta/okta.yaml"),
            "okta:\n  client:\n    orgUrl: https://project.okta.com\n",
        )
        .unwrap();
        assert_eq!(
            y.get("OKTA_CLIENT_ORGURL"),
            Some("https://project.okta.com")
        );
        assert_eq!(y.get("OKTA_CLIENT_TOKEN"), Some("yaml-token"));

        let config = okta_config(&OktaFlags::default(), |_| None, &y).unwrap();
        assert_eq!(config.org_url, "https://project.okta.com");
        assert_eq!(config.max_retries, 7);

        let env =
            |name: &str| (name == "OKTA_CLIENT_ORGURL").then(|| "https://env.okta.com".to_owned());
        let config = okta_config(&OktaFlags::default(), env, &y).unwrap();
        assert_eq!(config.org_url, "https://env.okta.com");
        match &config.credentials {
            Credentials::ApiToken(token) => assert_eq!(token.expose(), "yaml-token"),
            other => panic!("unexpected credentials {other:?}"),
        }

        let flags = OktaFlags {
            org_url: Some("https://flag.okta.com".into()),
            token: None,
        };
        let config = okta_config(&flags, env, &y).unwrap();
        assert_eq!(config.org_url, "https://flag.okta.com");
    }

    #[test]
    fn files_are_read_from_home_then_working_directory() {
        let home = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        for (dir, url) in [
            (&home, "https://home.okta.com"),
            (&cwd, "https://cwd.okta.com"),
        ] {
            std::fs::create_dir(dir.path().join(".okta")).unwrap();
            std::fs::write(
                dir.path().join(".okta/okta.yaml"),
                format!("okta:\n  client:\n    orgUrl: {url}\n    token: t-{url}\n"),
            )
            .unwrap();
        }
        let y = OktaYaml::load(Some(home.path()), cwd.path()).unwrap();
        assert_eq!(y.get("OKTA_CLIENT_ORGURL"), Some("https://cwd.okta.com"));
        assert_eq!(y.files().len(), 2);
        std::fs::remove_file(cwd.path().join(".okta/okta.yaml")).unwrap();
        let y = OktaYaml::load(Some(home.path()), cwd.path()).unwrap();
        assert_eq!(y.get("OKTA_CLIENT_ORGURL"), Some("https://home.okta.com"));
    }

    #[test]
    fn a_broken_file_is_named_and_values_stay_out_of_debug() {
        let mut y = OktaYaml::default();
        let err = y
            .merge(Path::new("/x/.okta/okta.yaml"), "okta: [unclosed")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/x/.okta/okta.yaml: not a valid okta.yaml"),
            "{err}"
        );
        let y = yaml(FILE);
        let debug = format!("{y:?}");
        assert!(debug.contains("OKTA_CLIENT_TOKEN"));
        assert!(!debug.contains("yaml-token"), "{debug}");
    }
}
