//! Small vocabulary types shared by the protocol and the extraction rules.
//! Their wire spelling is fixed by `PROTOCOL.md` §1.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the exact wire spelling (case-sensitive).
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Which offer a price belongs to.
    Condition { New => "new", Used => "used", Refurbished => "refurbished" }
);

wire_enum!(
    /// Whether the offer can be bought now.
    Availability {
        InStock => "in_stock",
        OutOfStock => "out_of_stock",
        Preorder => "preorder",
        Unknown => "unknown",
    }
);

wire_enum!(
    /// Who sells the offer.
    Seller { Amazon => "amazon", ThirdParty => "third_party", Unknown => "unknown" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_round_trips() {
        for c in Condition::ALL {
            assert_eq!(Condition::parse(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(Availability::parse("in_stock"), Some(Availability::InStock));
        assert_eq!(Availability::parse("In_Stock"), None);
        assert_eq!(Seller::parse("third_party"), Some(Seller::ThirdParty));
    }
}
