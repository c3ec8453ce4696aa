//! Operations and scopes in words, for people deciding at a glance.

/// An RBAC operation name in words: `Microsoft.Storage/storageAccounts/write`
/// → "Create or update a storage account (Microsoft.Storage)".
///
/// ```
/// use airlock_approval::ui::operation_in_words;
/// assert_eq!(operation_in_words("Microsoft.Storage/storageAccounts/write"),
///     "Create or update a storage account (Microsoft.Storage)");
/// assert_eq!(operation_in_words("Microsoft.Compute/virtualMachines/restart/action"),
///     "Run restart on a virtual machine (Microsoft.Compute)");
/// assert_eq!(operation_in_words("Microsoft.KeyVault/vaults/secrets/delete"),
///     "Delete a secret of a vault (Microsoft.KeyVault)");
/// ```
pub fn operation_in_words(name: &str) -> String {
    let mut segments: Vec<&str> = name.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() < 3 {
        return name.to_owned();
    }
    let namespace = segments.remove(0);
    let mut verb = segments.pop().unwrap_or_default();
    let mut action = None;
    if verb.eq_ignore_ascii_case("action") && segments.len() > 1 {
        action = segments.pop();
        verb = "action";
    }
    let types: Vec<String> = segments.iter().map(|t| singular_words(t)).collect();
    let Some((last, parents)) = types.split_last() else {
        return name.to_owned();
    };
    let mut object = format!("{} {last}", article(last));
    for parent in parents.iter().rev() {
        object.push_str(&format!(" of {} {parent}", article(parent)));
    }
    let phrase = match verb.to_ascii_lowercase().as_str() {
        "write" => format!("Create or update {object}"),
        "delete" => format!("Delete {object}"),
        "read" => format!("Read {object}"),
        "action" => format!("Run {} on {object}", action.unwrap_or("an action")),
        other => format!("{other} {object}"),
    };
    format!("{phrase} ({namespace})")
}

/// `storageAccounts` → `storage account`; `resourceGroups` → `resource group`.
fn singular_words(camel: &str) -> String {
    let mut words = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    if let Some(stem) = words.strip_suffix("ies") {
        format!("{stem}y")
    } else if words.ends_with("sses") || words.ends_with("xes") {
        words[..words.len() - 2].to_owned()
    } else if words.ends_with('s') && !words.ends_with("ss") {
        words[..words.len() - 1].to_owned()
    } else {
        words
    }
}

fn article(noun: &str) -> &'static str {
    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A resource scope as labelled steps, outermost first:
/// `/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa`
/// → `[("Subscription", "s"), ("Resource group", "rg"), ("Microsoft.Storage/storageAccounts", "sa")]`.
///
/// ```
/// use airlock_approval::ui::scope_steps;
/// let steps = scope_steps("/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/x");
/// assert_eq!(steps, [
///     ("Subscription".to_owned(), "s".to_owned()),
///     ("Resource group".to_owned(), "rg".to_owned()),
///     ("Microsoft.KeyVault/vaults".to_owned(), "v".to_owned()),
///     ("secrets".to_owned(), "x".to_owned()),
/// ]);
/// ```
pub fn scope_steps(scope: &str) -> Vec<(String, String)> {
    let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let key = segments[i];
        let value = segments.get(i + 1).copied().unwrap_or("");
        if key.eq_ignore_ascii_case("providers") && i + 2 < segments.len() {
            let namespace = value;
            let kind = segments[i + 2];
            let name = segments.get(i + 3).copied().unwrap_or("");
            steps.push((format!("{namespace}/{kind}"), name.to_owned()));
            i += 4;
            continue;
        }
        let label = match key.to_ascii_lowercase().as_str() {
            "subscriptions" => "Subscription".to_owned(),
            "resourcegroups" => "Resource group".to_owned(),
            "tenants" => "Tenant".to_owned(),
            _ => key.to_owned(),
        };
        steps.push((label, value.to_owned()));
        i += 2;
    }
    steps
}
