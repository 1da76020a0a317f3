//! Pipedrive's token cost of every endpoint the connector calls, as the `x-token-cost` of
//! the `GET` operation in Pipedrive's OpenAPI specs (`shared/vendor/pipedrive/`).

/// `(path template, x-token-cost)` of each `GET` the connector sends: every entity's list,
/// detail and fields path. `{id}` stands for one path segment.
pub const TOKEN_COSTS: &[(&str, u64)] = &[
    ("/v1/users", 20),
    ("/v1/users/{id}", 2),
    ("/v2/pipelines", 5),
    ("/v2/pipelines/{id}", 1),
    ("/v2/stages", 5),
    ("/v2/stages/{id}", 1),
    ("/v2/organizations", 10),
    ("/v2/organizations/{id}", 1),
    ("/v2/organizationFields", 10),
    ("/v2/persons", 10),
    ("/v2/persons/{id}", 1),
    ("/v2/personFields", 10),
    ("/v2/deals", 10),
    ("/v2/deals/{id}", 1),
    ("/v2/dealFields", 10),
];

fn matches(template: &str, path: &str) -> bool {
    let mut wanted = template.trim_matches('/').split('/');
    let mut given = path.trim_matches('/').split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some("{id}"), Some(segment)) if !segment.is_empty() => {}
            (Some(expected), Some(segment)) if expected == segment => {}
            _ => return false,
        }
    }
}

/// The token cost of a `GET` of `path` (query string ignored). A path outside
/// [`TOKEN_COSTS`] is charged the highest cost of its kind in the table (a detail or a list),
/// so the budget is never under-counted.
pub fn request_cost(path: &str, _query: &[(String, String)], is_detail: bool) -> u64 {
    let path = path.split('?').next().unwrap_or(path);
    if let Some((_, cost)) = TOKEN_COSTS.iter().find(|(template, _)| matches(template, path)) {
        return *cost;
    }
    TOKEN_COSTS
        .iter()
        .filter(|(template, _)| template.ends_with("{id}") == is_detail)
        .map(|(_, cost)| *cost)
        .max()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn vendor_dir() -> PathBuf {
        match std::env::var("SYNCLINE_VENDOR") {
            Ok(dir) => PathBuf::from(dir),
            Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vendor"),
        }
    }

    /// The `x-token-cost` of `GET path` in an OpenAPI YAML file, by a scan of its lines: the
    /// path key at indent 2, the `get:` operation at indent 4, its first `x-token-cost`.
    fn spec_cost(spec: &str, path: &str) -> Option<u64> {
        let keys = [format!("  {path}:"), format!("  '{path}':"), format!("  \"{path}\":")];
        let mut lines = spec.lines().skip_while(|line| !keys.iter().any(|key| line.trim_end() == key));
        lines.next()?;
        let mut in_get = false;
        for line in lines {
            let indent = line.len() - line.trim_start().len();
            if indent == 2 && !line.trim().is_empty() {
                return None;
            }
            if indent == 4 && line.trim_end().ends_with(':') {
                in_get = line.trim() == "get:";
            }
            if in_get {
                if let Some(value) = line.trim().strip_prefix("x-token-cost:") {
                    return value.trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    fn token_costs_equal_the_specs_x_token_cost() {
        let read = |name: &str| {
            let path = vendor_dir().join("pipedrive").join(name);
            std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}; set SYNCLINE_VENDOR", path.display()))
        };
        let (v1, v2) = (read("openapi-v1.yaml"), read("openapi-v2.yaml"));
        let mut called: Vec<&str> = Vec::new();
        for entity in super::super::spec::ENTITIES {
            called.push(entity.list_path);
            called.push(entity.detail_path);
            called.extend(entity.fields_path);
        }
        for path in &called {
            assert!(
                TOKEN_COSTS.iter().any(|(template, _)| template == path),
                "{path} is called but has no cost"
            );
        }
        for (template, cost) in TOKEN_COSTS {
            assert!(called.contains(template), "{template} is in the table but never called");
            let (spec, rest) = match (template.strip_prefix("/v1"), template.strip_prefix("/v2")) {
                (Some(rest), _) => (&v1, rest),
                (_, Some(rest)) => (&v2, rest),
                _ => panic!("{template}: neither v1 nor v2"),
            };
            assert_eq!(spec_cost(spec, rest), Some(*cost), "x-token-cost of GET {template}");
        }
    }

    #[test]
    fn concrete_paths_find_their_template() {
        assert_eq!(request_cost("/v2/deals/42", &[], true), 1);
        assert_eq!(request_cost("/v2/pipelines?limit=500", &[], false), 5);
        assert_eq!(request_cost("/v1/users/7", &[], true), 2);
        assert_eq!(request_cost("/v2/unknown", &[], false), 20);
    }
}
