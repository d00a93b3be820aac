//! `lightchain keys` and the config file's profiles: key files 0600, secrets printed only when
//! asked, imports from stdin, clear refusals.

use std::os::unix::fs::PermissionsExt;

use lightchain_devnet::crypto::{self, AccountKey};

use crate::Project;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Runs with `input` on stdin: (exit code, stdout, stderr).
fn with_stdin(p: &Project, args: &[&str], input: &str) -> (i32, String, String) {
    let out = p.cmd(args).write_stdin(input).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_are_created_listed_shown_and_imported() {
    let p = Project::new();
    let (code, out, _) = p.run(&["keys", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no keys"), "{out}");

    let (code, out, err) = p.run(&["keys", "new", "alice", "--json"]);
    assert_eq!(code, 0, "{err}");
    let alice = json(&out);
    assert!(alice.get("secret_key").is_none(), "{out}");
    let file = std::path::PathBuf::from(alice["file"].as_str().unwrap());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    // The secret is in the file, and only there.
    let (code, out, _) = p.run(&["keys", "show", "alice"]);
    assert_eq!(code, 0);
    assert!(!out.contains("private key"), "{out}");
    let (_, out, _) = p.run(&["keys", "show", "alice", "--secret", "--json"]);
    let shown = json(&out);
    let secret = shown["secret_key"].as_str().unwrap();
    let key = AccountKey::from_secret(crypto::unhex(secret).unwrap().try_into().unwrap());
    assert_eq!(
        key.address().to_string(),
        alice["address"].as_str().unwrap()
    );

    // Never replaced; names are plain.
    let (code, _, err) = p.run(&["keys", "new", "alice"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists already"), "{err}");
    let (code, _, err) = p.run(&["keys", "new", "../escape"]);
    assert_eq!(code, 1);
    assert!(err.contains("a key name is"), "{err}");

    // Imported from stdin (not the command line): dev account 1's key.
    let dev1 = AccountKey::from_secret(crypto::dev_secret("account", 1));
    let (code, out, err) = with_stdin(
        &p,
        &["keys", "import", "bob", "--json"],
        &format!("0x{}\n", dev1.secret_hex()),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["address"], dev1.address().to_string());
    let (code, _, err) = with_stdin(&p, &["keys", "import", "bad"], "zz");
    assert_eq!(code, 1);
    assert!(err.contains("64 hex digits"), "{err}");
    let (code, _, err) = with_stdin(&p, &["keys", "import", "empty"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no key given"), "{err}");

    let (_, out, _) = p.run(&["keys", "list", "--json"]);
    let list = json(&out);
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        !out.contains(secret) && !out.contains(&dev1.secret_hex()),
        "{out}"
    );
    let (code, _, err) = p.run(&["keys", "show", "carol"]);
    assert_eq!(code, 1);
    assert!(err.contains("no key \"carol\""), "{err}");
}

#[test]
fn profiles_say_where_the_node_is() {
    let p = Project::new();
    p.write(
        "config/config.toml",
        "default_profile = \"far\"\n[profiles.far]\nrpc = \"http://127.0.0.1:9\"\n[profiles.other]\nrpc = \"http://127.0.0.1:7\"\n",
    );
    // The default profile's node (down: a clear error), another by name, a flag over both.
    let (code, _, err) = p.run(&["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("http://127.0.0.1:9"), "{err}");
    let (_, _, err) = p.run(&["status", "--profile", "other"]);
    assert!(err.contains("http://127.0.0.1:7"), "{err}");
    let (_, _, err) = p.run(&[
        "status",
        "--profile",
        "other",
        "--rpc",
        "http://127.0.0.1:5",
    ]);
    assert!(err.contains("http://127.0.0.1:5"), "{err}");
    let (code, _, err) = p.run(&["status", "--profile", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no profile \"nope\"") && err.contains("far, other"),
        "{err}"
    );
    p.write("config/config.toml", "[profiles.x]\nrpc = 3\n");
    let (code, _, err) = p.run(&["status"]);
    assert_eq!(code, 1);
    assert!(err.contains("config.toml"), "{err}");
}
