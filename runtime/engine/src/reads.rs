//! What a rule read of the sign-in it was lent: the host notes each field, attribute and
//! client-metadata key as the rule asks for it, so a capture for replay can keep exactly
//! what decided and drop the rest.

/// A field of the sign-in besides attributes and client metadata, as a capture names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `userName`.
    UserName,
    /// The app client id.
    ClientId,
    /// The user pool id.
    UserPoolId,
    /// Pre-auth `userNotFound`.
    UserNotFound,
    /// Post-auth `newDeviceUsed`.
    NewDeviceUsed,
    /// The user's groups (`groupConfiguration`).
    Groups,
    /// Requested scopes.
    Scopes,
    /// Whether the user signs in through a federated provider (and for the first time):
    /// derived from the `identities` and `cognito:user_status` attributes.
    Federated,
    /// The trusted context the app's backend signed.
    TrustedContext,
}

/// Which names of a name-value list a rule read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Names {
    /// These names (each once, in the order first read).
    #[default]
    None,
    /// These names.
    Some(Vec<String>),
    /// The whole list.
    All,
}

impl Names {
    /// Notes that `name` was read (taking the name the rule passed: no copy on the
    /// evaluation path).
    pub fn note(&mut self, name: impl AsRef<str> + Into<String>) {
        match self {
            Names::None => *self = Names::Some(vec![name.into()]),
            Names::Some(names) if !names.iter().any(|n| n == name.as_ref()) => {
                names.push(name.into())
            }
            Names::Some(_) | Names::All => {}
        }
    }

    /// Whether `name` was read (or the whole list).
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Names::None => false,
            Names::Some(names) => names.iter().any(|n| n == name),
            Names::All => true,
        }
    }

    /// Adds what `other` read.
    pub fn merge(&mut self, other: &Names) {
        match other {
            Names::None => {}
            Names::All => *self = Names::All,
            Names::Some(names) => names.iter().for_each(|n| self.note(n.as_str())),
        }
    }
}

/// What one rule (or a chain of rules) read of a sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// User attributes.
    pub attributes: Names,
    /// Client metadata (pre-auth `validationData`) keys.
    pub client_metadata: Names,
    /// Other fields.
    pub fields: Vec<Field>,
}

impl Reads {
    /// Notes that `field` was read.
    pub fn field(&mut self, field: Field) {
        if !self.fields.contains(&field) {
            self.fields.push(field);
        }
    }

    /// Whether `field` was read.
    pub fn has(&self, field: Field) -> bool {
        self.fields.contains(&field)
    }

    /// Adds what `other` read.
    pub fn merge(&mut self, other: &Reads) {
        self.attributes.merge(&other.attributes);
        self.client_metadata.merge(&other.client_metadata);
        for field in &other.fields {
            self.field(*field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_once_and_all_absorbs_them() {
        let mut names = Names::default();
        assert!(!names.contains("email"));
        names.note("email");
        names.note("email");
        names.note("sub");
        assert_eq!(names, Names::Some(vec!["email".into(), "sub".into()]));
        let mut all = Names::All;
        all.merge(&names);
        assert_eq!(all, Names::All);
        names.merge(&Names::All);
        assert!(names.contains("anything"));
    }

    #[test]
    fn reads_merge_fields_once() {
        let mut a = Reads::default();
        a.field(Field::Groups);
        let mut b = Reads::default();
        b.field(Field::Groups);
        b.field(Field::TrustedContext);
        b.attributes.note("email");
        a.merge(&b);
        assert_eq!(a.fields, [Field::Groups, Field::TrustedContext]);
        assert!(a.attributes.contains("email") && a.has(Field::TrustedContext));
    }
}
