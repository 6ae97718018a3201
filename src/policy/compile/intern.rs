//! Storing what many rules require alike only once.
//!
//! A templated route yields a rule per method, HEAD repeats GET, and a resource's routes
//! repeat its scopes: a 10,000-route policy has ~30,000 rules but only a few thousand
//! distinct scope lists. Rules point at a shared list instead of owning a copy.

use std::collections::HashMap;

use crate::policy::{ScopeGroups, ScopeList};

/// Ends one `any_scopes` group in a key of [`Interner::any`].
const GROUP_END: usize = usize::MAX;

/// The compiler's hash maps: keyed by the policy's own short strings and ids, where
/// SipHash's resistance to crafted collisions buys nothing and costs ~4% of a compile.
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Concrete scopes by id, and the distinct lists of them rules require.
#[derive(Default)]
pub(super) struct Interner {
    /// Concrete scope → its id, or `None` when the catalog does not list it.
    ids: FastMap<Box<str>, Option<usize>>,
    names: Vec<Box<str>>,
    all: FastMap<Box<[usize]>, ScopeList>,
    any: FastMap<Box<[usize]>, ScopeGroups>,
    /// What most rules have: no `any_scopes`.
    no_groups: ScopeGroups,
}

impl Interner {
    /// The id of a concrete scope; `None` when `in_catalog` refuses it (asked once per
    /// distinct scope, so the catalog is not searched again for every rule).
    pub fn scope(
        &mut self,
        concrete: &str,
        in_catalog: impl FnOnce(&str) -> bool,
    ) -> Option<usize> {
        if let Some(&id) = self.ids.get(concrete) {
            return id;
        }
        let id = in_catalog(concrete).then(|| {
            self.names.push(concrete.into());
            self.names.len() - 1
        });
        self.ids.insert(concrete.into(), id);
        id
    }

    /// The shared list of these scopes (an `all` requirement).
    pub fn all(&mut self, ids: &[usize]) -> ScopeList {
        if let Some(list) = self.all.get(ids) {
            return list.clone();
        }
        let list: ScopeList = ids.iter().map(|&i| self.names[i].clone()).collect();
        self.all.insert(ids.into(), list.clone());
        list
    }

    /// The shared groups of an `any` requirement; `ids` holds each group's scopes
    /// followed by [`Interner::end_group`].
    pub fn any(&mut self, ids: &[usize]) -> ScopeGroups {
        if ids.is_empty() {
            return self.no_groups.clone();
        }
        if let Some(groups) = self.any.get(ids) {
            return groups.clone();
        }
        let groups: ScopeGroups = ids
            .split_inclusive(|&i| i == GROUP_END)
            .map(|group| {
                group
                    .iter()
                    .filter(|&&i| i != GROUP_END)
                    .map(|&i| self.names[i].clone())
                    .collect()
            })
            .collect();
        self.any.insert(ids.into(), groups.clone());
        groups
    }

    /// Closes a group in the key passed to [`Interner::any`].
    pub fn end_group(ids: &mut Vec<usize>) {
        ids.push(GROUP_END);
    }

    /// Every concrete scope a rule requires (that the catalog lists), unordered.
    pub fn into_required(self) -> Vec<Box<str>> {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn equal_lists_are_stored_once() {
        let mut i = Interner::default();
        let a = i.scope("a:read", |_| true).unwrap();
        let b = i.scope("b:read", |_| true).unwrap();
        assert_eq!(i.scope("a:read", |_| unreachable!()), Some(a));
        assert_eq!(i.scope("nope", |_| false), None);
        assert_eq!(i.scope("nope", |_| unreachable!()), None);
        let one = i.all(&[a, b]);
        assert!(Arc::ptr_eq(&one, &i.all(&[a, b])));
        assert_eq!(&one[..], [Box::from("a:read"), Box::from("b:read")]);
        assert!(!Arc::ptr_eq(&one, &i.all(&[b, a])));

        let mut key = vec![a];
        Interner::end_group(&mut key);
        Interner::end_group(&mut key);
        key.push(b);
        Interner::end_group(&mut key);
        let groups = i.any(&key);
        let want: [Box<[Box<str>]>; 3] = [
            Box::from([Box::from("a:read")]),
            Box::from([]),
            Box::from([Box::from("b:read")]),
        ];
        assert_eq!(&groups[..], want);
        assert!(Arc::ptr_eq(&groups, &i.any(&key)));
        assert!(i.any(&[]).is_empty());
    }
}
