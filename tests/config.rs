//! Config loading: the shipped file loads, and each broken file is refused
//! with the exact file, line and dotted key.

use std::path::{Path, PathBuf};

use gantry::config::{self, ConfigError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

/// A small valid config; each case edits it. Lines matter: cases point at them.
const BASE: &str = r#"[gantry]
admin_roles = ["admin"]
break_glass_roles = ["sre"]

[roles]
developer = "Writes code"
release-manager = "Ships releases"
admin = "Runs Gantry"
sre = "Runs production"

[clusters.sandbox]
context = "sandbox"

[apps.web]
repo = "acme/web"
image = "registry.local:5000/acme/web"
deployments = ["web"]

[environments.dev]
cluster = "sandbox"
namespace = "dev"
requesters = ["developer"]

[environments.prod]
cluster = "sandbox"
namespace = "prod"
requesters = ["release-manager"]
promote_from = "dev"
approvals = { count = 2, roles = ["release-manager"] }

[[environments.prod.freeze]]
start = "2026-12-20T00:00:00Z"
end = "2027-01-04T00:00:00Z"
reason = "end of year"

[[environments.prod.freeze]]
days = ["fri"]
from = "15:00"
to = "24:00"
reason = "Friday afternoon"

[environments.preview]
cluster = "sandbox"
namespace_template = "preview-{branch}"
requesters = ["developer"]

[people.alice]
name = "Alice"
roles = ["developer", "release-manager"]
identities = ["slack:T0SANDBOX:UALICE01", "github:alice"]

[people.bob]
name = "Bob"
roles = ["release-manager", "sre"]
identities = ["github:bob"]
"#;

/// The base with `from` replaced by `to` (which must change something).
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "base has no {from:?}");
    BASE.replacen(from, to, 1)
}

/// The base with `text` appended.
fn add(text: &str) -> String {
    format!("{BASE}\n{text}")
}

/// The 1-based line carrying the `# <-` marker.
fn marked_line(doc: &str) -> usize {
    let lines: Vec<usize> = doc
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("# <-"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "exactly one marker expected in\n{doc}");
    lines[0]
}

fn refused(doc: &str) -> ConfigError {
    match config::parse(doc, "config/gantry.toml") {
        Ok(_) => panic!("should be refused:\n{doc}"),
        Err(e) => e,
    }
}

#[test]
fn the_shipped_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gantry.toml");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.envs().len(), 6);
    assert_eq!(c.path(), path);
}

#[test]
fn the_base_is_valid() {
    let c = config::parse(BASE, "base.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.default_app().map(|a| a.name.as_str()),
        Some("web"),
        "the only app is the default"
    );
}

#[test]
fn approval_rules_load_in_each_form() {
    let list = edit(
        "approvals = { count = 2, roles = [\"release-manager\"] }",
        "approvals = [\n  { name = \"release\", roles = [\"release-manager\"] },\n  { name = \"on-duty\", roles = [\"sre\"] },\n]",
    );
    let c = config::parse(&list, "list.toml").unwrap_or_else(|e| panic!("{e}"));
    let a = &c.env("prod").unwrap().approvals;
    let names: Vec<&str> = a.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["release", "on-duty"]);
    assert!(a.one_rule_per_person, "the default");
    assert_eq!(a.expires, std::time::Duration::from_secs(3600));

    // What no set of different people can meet is fine when one person
    // may count for several rules.
    let shared = edit(
        "approvals = { count = 2, roles = [\"release-manager\"] }",
        "approvals = { one_rule_per_person = false, self_approval = true, expires = \"2h\", rules = [\n  { name = \"release\", roles = [\"release-manager\"], count = 2 },\n  { name = \"on-duty\", roles = [\"sre\"] },\n] }",
    );
    let c = config::parse(&shared, "shared.toml").unwrap_or_else(|e| panic!("{e}"));
    let a = &c.env("prod").unwrap().approvals;
    assert_eq!(a.rules.len(), 2);
    assert!(!a.one_rule_per_person && a.self_approval);
    assert_eq!(a.expires, std::time::Duration::from_secs(7200));

    let tables = edit(
        "approvals = { count = 2, roles = [\"release-manager\"] }\n",
        "",
    ) + "\n[[environments.prod.approvals]]\nname = \"release\"\nroles = [\"release-manager\"]\n\n[[environments.prod.approvals]]\nname = \"on-duty\"\nroles = [\"sre\"]\n";
    let c = config::parse(&tables, "tables.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.env("prod").unwrap().approvals.rules.len(), 2);
}

#[test]
fn the_message_reads_file_line_key_message() {
    let doc = edit(
        "approvals = { count = 2, roles = [\"release-manager\"] }",
        "approvals = { count = 3, roles = [\"release-manager\"] } # <-",
    );
    let err = refused(&doc);
    let line = marked_line(&doc);
    assert_eq!(
        err.to_string(),
        format!(
            "config/gantry.toml:{line}: environments.prod.approvals.count: \
             3 approvals from [release-manager] required, but only 2 people hold those roles"
        )
    );
    assert_eq!(err.file(), "config/gantry.toml");
    assert_eq!(err.line(), Some(line));
    assert_eq!(err.key(), Some("environments.prod.approvals.count"));
}

/// (case name, document with a `# <-` marker on the expected line, key, message part)
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    vec![
        // toml and serde
        ("syntax", edit("namespace = \"dev\"", "namespace = \"dev # <-"), "environments.dev.namespace", "invalid basic string"),
        ("unknown key", edit("namespace = \"dev\"", "namespaec = \"dev\" # <-"), "environments.dev.namespaec", "unknown field `namespaec`"),
        ("unknown key in inline table", edit("roles = [\"release-manager\"] }", "roles = [\"release-manager\"], selfapproval = true } # <-"), "environments.prod.approvals.selfapproval", "unknown field `selfapproval`"),
        ("unknown key in array of tables", edit("days = [\"fri\"]", "dayz = [\"fri\"] # <-"), "environments.prod.freeze[1].dayz", "unknown field `dayz`"),
        ("unknown top-level table", add("[plaforms.slack] # <-\nenabled = true"), "plaforms", "unknown field `plaforms`"),
        ("missing required key", edit("[apps.web]\nrepo = \"acme/web\"\n", "[apps.web] # <-\n"), "apps.web.repo", "missing field `repo`"),
        ("wrong type", edit("count = 2, roles = [\"release-manager\"] }", "count = \"two\", roles = [\"release-manager\"] } # <-"), "environments.prod.approvals.count", "invalid type"),
        ("huge number", edit("count = 2, roles = [\"release-manager\"] }", "count = 99999999999999999999, roles = [\"release-manager\"] } # <-"), "environments.prod.approvals.count", "expected u32"),
        ("duplicate key", edit("namespace = \"prod\"", "namespace = \"prod\"\nnamespace = \"prod2\" # <-"), "environments.prod.namespace", "duplicate key"),
        // roles
        ("unknown role of a person", edit("roles = [\"developer\", \"release-manager\"]", "roles = [\"developer\", \"releese-manager\"] # <-"), "people.alice.roles[1]", "unknown role `releese-manager`"),
        ("unknown requester role", edit("requesters = [\"developer\"]", "requesters = [\"dev\"] # <-"), "environments.dev.requesters[0]", "declare it under [roles]"),
        ("unknown approval role", edit("roles = [\"release-manager\"] }", "roles = [\"release-managers\"] } # <-"), "environments.prod.approvals.roles[0]", "unknown role `release-managers`"),
        ("unknown admin role", edit("admin_roles = [\"admin\"]", "admin_roles = [\"admins\"] # <-"), "gantry.admin_roles[0]", "unknown role `admins`"),
        ("unknown break-glass role", edit("break_glass_roles = [\"sre\"]", "break_glass_roles = [\"sre\", \"ops\"] # <-"), "gantry.break_glass_roles[1]", "unknown role `ops`"),
        ("empty role description", edit("sre = \"Runs production\"", "sre = \"\" # <-"), "roles.sre", "description is empty"),
        // approvals
        ("approvals beyond role holders", edit("count = 2, roles = [\"release-manager\"] }", "count = 3, roles = [\"release-manager\"] } # <-"), "environments.prod.approvals.count", "3 approvals from [release-manager] required, but only 2 people hold those roles"),
        ("approvals without roles", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = { count = 1 } # <-"), "environments.prod.approvals.roles", "1 approval required, but no roles may approve"),
        ("bad approval expiry", edit("roles = [\"release-manager\"] }", "roles = [\"release-manager\"], expires = \"soon\" } # <-"), "environments.prod.approvals.expires", "`soon` is not a duration"),
        // approval rules
        ("rule naming an undeclared role", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [\"release-manager\"] },\n  { name = \"qa\", roles = [\"qa\"] }, # <-\n]"), "environments.prod.approvals[1].roles[0]", "unknown role `qa`"),
        ("rule beyond its role holders", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [\"release-manager\"] },\n  { name = \"on-duty\", roles = [\"sre\"], count = 2 }, # <-\n]"), "environments.prod.approvals[1].count", "2 approvals from [sre] required, but only 1 person holds those roles"),
        ("rules no set of people can meet", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [ # <-\n  { name = \"release\", roles = [\"release-manager\"] },\n  { name = \"on-duty\", roles = [\"sre\"] },\n  { name = \"second\", roles = [\"release-manager\"] },\n]"), "environments.prod.approvals", "no set of different people can meet every approval rule (on-duty, release, second) at once: they need 3 people, and at most 2"),
        ("rules no set of people can meet, table form", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = { expires = \"2h\", rules = [ # <-\n  { name = \"release\", roles = [\"release-manager\"], count = 2 },\n  { name = \"on-duty\", roles = [\"sre\"] },\n] }"), "environments.prod.approvals.rules", "no set of different people can meet every approval rule"),
        ("empty list of rules", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [] # <-"), "environments.prod.approvals", "the list of approval rules is empty"),
        ("duplicate rule names", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [\"release-manager\"] },\n  { name = \"release\", roles = [\"sre\"] }, # <-\n]"), "environments.prod.approvals[1].name", "approval rule `release` is named twice"),
        ("rule without roles", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [] }, # <-\n]"), "environments.prod.approvals[0].roles", "names no roles"),
        ("rule with count 0", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [\"sre\"], count = 0 }, # <-\n]"), "environments.prod.approvals[0].count", "a count of at least 1"),
        ("bad rule name", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"Release Team\", roles = [\"sre\"] }, # <-\n]"), "environments.prod.approvals[0].name", "approval rule"),
        ("unknown key in a rule", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = [\n  { name = \"release\", roles = [\"sre\"], cuont = 1 }, # <-\n]"), "environments.prod.approvals[0].cuont", "unknown field `cuont`"),
        ("rules beside count", edit("approvals = { count = 2, roles = [\"release-manager\"] }", "approvals = { count = 1, rules = [{ name = \"release\", roles = [\"sre\"] }] } # <-"), "environments.prod.approvals.count", "give either rules or count and roles"),
        // promotion and clusters
        ("promote from a missing env", edit("promote_from = \"dev\"", "promote_from = \"staging\" # <-"), "environments.prod.promote_from", "unknown environment `staging`"),
        ("promote from itself", edit("promote_from = \"dev\"", "promote_from = \"prod\" # <-"), "environments.prod.promote_from", "cannot promote from itself"),
        ("unknown cluster", edit("cluster = \"sandbox\"\nnamespace = \"dev\"", "cluster = \"sandbx\" # <-\nnamespace = \"dev\""), "environments.dev.cluster", "unknown cluster `sandbx` (clusters: sandbox)"),
        // namespaces
        ("uppercase namespace", edit("namespace = \"dev\"", "namespace = \"Dev\" # <-"), "environments.dev.namespace", "not a valid namespace"),
        ("namespace ending in a dash", edit("namespace = \"dev\"", "namespace = \"dev-\" # <-"), "environments.dev.namespace", "DNS-1123"),
        ("namespace too long", edit("namespace = \"dev\"", &format!("namespace = \"{}\" # <-", "d".repeat(64))), "environments.dev.namespace", "at most 63"),
        ("template placeholder", edit("preview-{branch}\"", "preview-{sha}\" # <-"), "environments.preview.namespace_template", "unknown placeholder `{sha}`"),
        ("template literal", edit("preview-{branch}\"", "Preview_{branch}\" # <-"), "environments.preview.namespace_template", "cannot form a valid name"),
        ("namespace and template", edit("namespace_template = \"preview-{branch}\"", "namespace = \"preview\"\nnamespace_template = \"preview-{branch}\" # <-"), "environments.preview.namespace_template", "not both"),
        ("neither namespace nor template", edit("[environments.dev]\ncluster = \"sandbox\"\nnamespace = \"dev\"", "[environments.dev] # <-\ncluster = \"sandbox\""), "environments.dev.namespace", "give namespace"),
        ("ttl without template", edit("namespace = \"dev\"", "namespace = \"dev\"\nttl = \"1h\" # <-"), "environments.dev.ttl", "only with namespace_template"),
        // apps
        ("tag placeholder", edit("deployments = [\"web\"]", "deployments = [\"web\"]\ntag_template = \"{tag}\" # <-"), "apps.web.tag_template", "unknown placeholder `{tag}`"),
        ("repo without owner", edit("repo = \"acme/web\"", "repo = \"web\" # <-"), "apps.web.repo", "not a GitHub repository `owner/name`"),
        ("image with tag", edit("image = \"registry.local:5000/acme/web\"", "image = \"registry.local:5000/acme/web:1.0\" # <-"), "apps.web.image", "has a tag"),
        ("image with digest", edit("image = \"registry.local:5000/acme/web\"", "image = \"acme/web@sha256:abc\" # <-"), "apps.web.image", "has a digest"),
        ("no deployments", edit("deployments = [\"web\"]", "deployments = [] # <-"), "apps.web.deployments", "at least one"),
        ("bad deployment name", edit("deployments = [\"web\"]", "deployments = [\n  \"web\",\n  \"Web_2\", # <-\n]"), "apps.web.deployments[1]", "not a valid Deployment name"),
        ("unknown default app", edit("[gantry]\n", "[gantry]\ndefault_app = \"api\" # <-\n"), "gantry.default_app", "unknown app `api` (apps: web)"),
        ("no apps", edit("[apps.web]\nrepo = \"acme/web\"\nimage = \"registry.local:5000/acme/web\"\ndeployments = [\"web\"]\n", "").replacen("[gantry]", "[gantry] # <-", 1), "apps", "no apps are configured"),
        // people and identities
        ("identity of two people", edit("identities = [\"github:bob\"]", "identities = [\"github:bob\", \"github:Alice\"] # <-"), "people.bob.identities[1]", "`github:alice` is listed for both alice and bob"),
        ("bad identity", edit("identities = [\"github:bob\"]", "identities = [\"bob\"] # <-"), "people.bob.identities[0]", "identity `bob` is not valid"),
        ("slack identity of another team", edit("identities = [\"github:bob\"]", "identities = [\"slack:T0OTHER:UBOB0001\"] # <-") + "[platforms.slack]\nteam_ids = [\"T0SANDBOX\"]\nsigning_secret = { env = \"S\" }\nbot_token = { env = \"B\" }\n", "people.bob.identities[0]", "not in platforms.slack.team_ids"),
        // durations and freezes
        ("bad duration", edit("namespace = \"dev\"", "namespace = \"dev\"\nrollout_timeout = \"10 minutes please\" # <-"), "environments.dev.rollout_timeout", "is not a duration"),
        ("zero duration", edit("namespace = \"dev\"", "namespace = \"dev\"\nrollout_timeout = \"0s\" # <-"), "environments.dev.rollout_timeout", "longer than zero"),
        ("freeze ends before it starts", edit("end = \"2027-01-04T00:00:00Z\"", "end = \"2026-01-04T00:00:00Z\" # <-"), "environments.prod.freeze[0].end", "before or when it starts"),
        ("freeze start not a time", edit("start = \"2026-12-20T00:00:00Z\"", "start = \"next week\" # <-"), "environments.prod.freeze[0].start", "not an RFC 3339 time"),
        ("freeze bad day", edit("days = [\"fri\"]", "days = [\"fri\",\n  \"caturday\"] # <-"), "environments.prod.freeze[1].days[1]", "`caturday` is not a day"),
        ("freeze bad clock", edit("from = \"15:00\"", "from = \"3pm\" # <-"), "environments.prod.freeze[1].from", "not a time of day HH:MM"),
        ("freeze mixes kinds", edit("days = [\"fri\"]", "days = [\"fri\"]\nstart = \"2026-12-20T00:00:00Z\"").replacen("[[environments.prod.freeze]]\ndays", "[[environments.prod.freeze]] # <-\ndays", 1), "environments.prod.freeze[1]", "either start and end, or days, from and to"),
        ("freeze missing end", edit("end = \"2027-01-04T00:00:00Z\"\n", "").replacen("[[environments.prod.freeze]]\nstart", "[[environments.prod.freeze]] # <-\nstart", 1), "environments.prod.freeze[0].end", "missing `end`"),
        ("unknown window time zone", edit("from = \"15:00\"", "from = \"15:00\"\ntimezone = \"Europe/Berln\" # <-"), "environments.prod.freeze[1].timezone", "unknown time zone `Europe/Berln`; use an IANA name"),
        ("unknown environment time zone", edit("promote_from = \"dev\"", "promote_from = \"dev\"\ntimezone = \"Mars/Olympus\" # <-"), "environments.prod.timezone", "unknown time zone `Mars/Olympus`"),
        ("time zone by its city", edit("promote_from = \"dev\"", "promote_from = \"dev\"\ntimezone = \"Berlin\" # <-"), "environments.prod.timezone", "unknown time zone `Berlin`; use an IANA name such as Europe/Berlin, America/New_York or UTC; did you mean Europe/Berlin?"),
        ("freeze wall-clock time without a zone", edit("start = \"2026-12-20T00:00:00Z\"", "start = \"2026-12-20T00:00:00\" # <-"), "environments.prod.freeze[0].start", "without an offset, set `timezone` on the window or its environment"),
        // branch patterns
        ("ref pattern not a regex", edit("namespace = \"dev\"", "namespace = \"dev\"\nrefs = [\n  \"main\",\n  \"re:^release/(v[0-9]+$\", # <-\n]"), "environments.dev.refs[1]", "branch pattern `re:^release/(v[0-9]+$` is not a valid regular expression: unclosed group"),
        ("ref pattern too large", edit("namespace = \"dev\"", "namespace = \"dev\"\nrefs = ['re:\\w{200}'] # <-"), "environments.dev.refs[0]", "branch pattern `re:\\w{200}` is too large once compiled"),
        ("ref glob with a bracket", edit("namespace = \"dev\"", "namespace = \"dev\"\nrefs = [\"feat/[x]\"] # <-"), "environments.dev.refs[0]", "contains `[`"),
        // strategy
        ("gitops without table", edit("namespace = \"dev\"", "namespace = \"dev\"\nstrategy = \"gitops\"").replacen("[environments.dev]", "[environments.dev] # <-", 1), "environments.dev.gitops", "needs an [environments.dev.gitops] table"),
        ("gitops table without strategy", add("[environments.dev.gitops] # <-\ntransport = \"github\"\nrepo = \"acme/deploy\"\npath = \"dev/kustomization.yaml\"\nformat = \"kustomize\""), "environments.dev.gitops", "needs strategy = \"gitops\""),
        ("unknown strategy", edit("namespace = \"dev\"", "namespace = \"dev\"\nstrategy = \"blue-green\" # <-"), "environments.dev.strategy", "unknown variant `blue-green`"),
        ("helm without key", edit("namespace = \"dev\"", "namespace = \"dev\"\nstrategy = \"gitops\"\ngitops = { transport = \"git\", url = \"https://git.example.com/c.git\", path = \"values.yaml\", format = \"helm\" } # <-"), "environments.dev.gitops.key", "needs key"),
        ("gitops token over plain http", edit("namespace = \"dev\"", "namespace = \"dev\"\nstrategy = \"gitops\"\ngitops = { transport = \"git\", url = \"http://git.example.com/c.git\", path = \"k.yaml\", format = \"kustomize\", token = { env = \"GITOPS_TOKEN\" } } # <-"), "environments.dev.gitops.token", "a token is sent only over https://"),
        ("gitops token with github transport", edit("namespace = \"dev\"", "namespace = \"dev\"\nstrategy = \"gitops\"\ngitops = { transport = \"github\", repo = \"acme/c\", path = \"k.yaml\", format = \"kustomize\", token = { env = \"GITOPS_TOKEN\" } } # <-"), "environments.dev.gitops.token", "token applies only with transport = \"git\""),
        // platforms and secrets
        ("slack socket mode without app token", add("[platforms.slack] # <-\nteam_ids = [\"T0SANDBOX\"]\nsigning_secret = { env = \"S\" }\nbot_token = { env = \"B\" }\nsocket_mode = true"), "platforms.slack.app_token", "socket_mode = true needs an app-level token"),
        ("github without credentials", add("[platforms.github] # <-\nwebhook_secret = { env = \"W\" }"), "platforms.github.token", "GitHub needs credentials"),
        ("github app without key", add("[platforms.github] # <-\nwebhook_secret = { env = \"W\" }\napp_id = 7"), "platforms.github.private_key", "app_id needs private_key"),
        ("inline secret", add("[platforms.github]\nwebhook_secret = \"hunter2\" # <-\ntoken = { env = \"T\" }"), "platforms.github.webhook_secret", "secrets are never written inline in config"),
        ("inline secret value", add("[platforms.github]\nwebhook_secret = { value = \"hunter2\" } # <-\ntoken = { env = \"T\" }"), "platforms.github.webhook_secret", "never written inline"),
        ("missing platform secret", add("[platforms.discord] # <-\napplication_id = \"1\"\nguild_ids = [\"2\"]\nbot_token = { env = \"B\" }"), "platforms.discord.public_key", "missing field `public_key`"),
        ("registry user without password", add("[registry] # <-\nusername = { env = \"U\" }"), "registry.password", "username needs password"),
        ("slack api over plain http", add("[platforms.slack]\nteam_ids = [\"T0SANDBOX\"]\napi_url = \"http://slack.example.com/api/\" # <-\nsigning_secret = { env = \"S\" }\nbot_token = { env = \"B\" }"), "platforms.slack.api_url", "would send credentials in the clear"),
        ("github api over plain http", add("[platforms.github]\napi_url = \"http://github.example.com/api/v3\" # <-\nwebhook_secret = { env = \"W\" }\ntoken = { env = \"T\" }"), "platforms.github.api_url", "use https (plain http only to 127.0.0.1 or localhost)"),
        ("bad poll interval", add("[platforms.github]\nwebhook_secret = { env = \"W\" }\ntoken = { env = \"T\" }\npoll_interval = \"often\" # <-"), "platforms.github.poll_interval", "`often` is not a duration"),
        ("registry endpoint not a host", add("[registry]\nendpoints = { \"https://r.example.com\" = \"https://mirror.example.com\" } # <-"), "registry.endpoints.\"https://r.example.com\"", "is not host or host:port"),
        ("registry endpoint over plain http", add("[registry]\nendpoints = { \"r.example.com\" = \"http://mirror.example.com\" } # <-"), "registry.endpoints.\"r.example.com\"", "would send credentials in the clear"),
        // how requests flow in
        ("soak longer than the approval window", edit("promote_from = \"dev\"", "promote_from = \"dev\"\nsoak = \"2h\" # <-"), "environments.prod.soak", "soak (2h) may not be longer than approvals.expires (1h)"),
        ("soak without promote_from", edit("namespace = \"dev\"", "namespace = \"dev\"\nsoak = \"1h\" # <-"), "environments.dev.soak", "this environment has no promote_from"),
        ("soak not a duration", edit("promote_from = \"dev\"", "promote_from = \"dev\"\nsoak = \"soon\" # <-"), "environments.prod.soak", "`soon` is not a duration"),
        // names
        ("uppercase env name", edit("[environments.dev]", "[environments.Dev] # <-").replace("promote_from = \"dev\"", "promote_from = \"Dev\""), "environments.Dev", "environment name `Dev` contains `D`"),
        ("look-alike env name", edit("[environments.dev]", "[environments.\"d\u{0435}v\"] # <-").replace("promote_from = \"dev\"\n", ""), "environments.\"d\\u{0435}v\"", "U+0435"),
        ("bad app name", edit("[apps.web]", "[apps.\"web app\"] # <-"), "apps.\"web app\"", "app name `web app` contains"),
        ("bad person id", edit("[people.bob]", "[people.Bob] # <-"), "people.Bob", "person name `Bob`"),
        ("bad role name", edit("sre = \"Runs production\"", "SRE = \"Runs production\" # <-"), "roles.SRE", "role name `SRE`"),
    ]
}

#[test]
fn each_rule_names_file_line_and_key() {
    let mut failures = Vec::new();
    for (name, doc, key, part) in cases() {
        let line = marked_line(&doc);
        let err = refused(&doc);
        let want_prefix = format!("config/gantry.toml:{line}: {key}: ");
        let shown = err.to_string();
        if !shown.starts_with(&want_prefix) || !shown.contains(part) {
            failures.push(format!(
                "{name}:\n  want {want_prefix}…{part}…\n  got  {shown}"
            ));
        }
        assert!(
            !shown.contains("hunter2"),
            "{name}: a secret leaked: {shown}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn files_on_disk() {
    let err = config::load(&data("unknown-key.toml")).unwrap_err();
    assert_eq!(err.file(), data("unknown-key.toml").display().to_string());
    assert_eq!(err.line(), Some(4));
    assert_eq!(err.key(), Some("environments.dev.namspace"));

    let err = config::load(&data("syntax-error.toml")).unwrap_err();
    assert_eq!(
        (err.line(), err.key()),
        (Some(3), Some("apps.web.repo")),
        "{err}"
    );

    let err = config::load(&data("not-utf8.toml")).unwrap_err();
    assert_eq!(err.line(), Some(2), "{err}");
    assert!(err.message().contains("not valid UTF-8"), "{err}");

    let err = config::load(&data("missing.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.toml"), "{err}");
    assert_eq!(err.line(), None);

    let err = config::load(&data("empty.toml")).unwrap_err();
    assert_eq!((err.line(), err.key()), (Some(1), Some("apps")), "{err}");
}

#[test]
fn time_zones_and_regex_refs_load() {
    let doc = edit(
        "promote_from = \"dev\"",
        "promote_from = \"dev\"\ntimezone = \"America/New_York\"\nrefs = [\"main\", 're:^release/v[0-9]+\\.[0-9]+$']",
    )
    .replacen(
        "to = \"24:00\"",
        "to = \"24:00\"\ntimezone = \"Europe/Berlin\"",
        1,
    );
    let c = config::parse(&doc, "zones.toml").unwrap_or_else(|e| panic!("{e}"));
    let prod = c.env("prod").unwrap();
    // The fixed window takes the environment's zone, the weekly one its own.
    let zones: Vec<&str> = prod.freezes.iter().map(|f| f.zone().name()).collect();
    assert_eq!(zones, ["America/New_York", "Europe/Berlin"]);
    assert_eq!(
        prod.freezes[1].to_string(),
        "fri 15:00-24:00 Europe/Berlin (Friday afternoon)"
    );
    // Fri 2026-12-04 14:00 UTC is 15:00 in Berlin.
    assert!(prod.freeze_at(1_796_392_800).is_some());
    assert!(prod.freeze_at(1_796_392_800 - 1).is_none());
    for (branch, allowed) in [
        ("main", true),
        ("release/v1.2", true),
        ("release/v1.2.3", false),
        ("feature/x", false),
    ] {
        assert_eq!(prod.allows_ref(branch), allowed, "{branch}");
    }
    // Without a timezone key the shipped behaviour is UTC.
    let base = config::parse(BASE, "base.toml").unwrap();
    let zones: Vec<&str> = base
        .env("prod")
        .unwrap()
        .freezes
        .iter()
        .map(|f| f.zone().name())
        .collect();
    assert_eq!(zones, ["UTC", "UTC"]);
}
