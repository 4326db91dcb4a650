//! Query-protocol form parameters: [`berth_wire::query_form::Form`], with
//! ELBv2's wording for the failures it words differently from the shared
//! one.

use crate::Elbv2Error;
pub use berth_wire::query_form::{Form, FormError};

impl From<FormError> for Elbv2Error {
    fn from(e: FormError) -> Self {
        Elbv2Error::Validation(match e {
            FormError::NotInteger { key, value } => {
                format!("'{value}' is not a valid integer for '{key}'")
            }
            FormError::NotBoolean { key, value } => {
                format!("'{value}' is not a valid boolean for '{key}'")
            }
            FormError::BadMarker => "Invalid marker".into(),
            other => other.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(e: FormError) -> String {
        Elbv2Error::from(e).to_string()
    }

    #[test]
    fn failures_use_elbv2_wording() {
        let f = Form::from_iter([("N", "x"), ("B", "yes"), ("Marker", "9")]);
        assert!(err(f.required("Name").unwrap_err()).contains("Value null at 'name'"));
        assert_eq!(err(f.int("N").unwrap_err()), "'x' is not a valid integer for 'N'");
        assert_eq!(err(f.bool("B").unwrap_err()), "'yes' is not a valid boolean for 'B'");
        assert_eq!(
            err(f.page(vec![1], "PageSize", 400, 400).unwrap_err()),
            "Invalid marker"
        );
        assert!(
            err(Form::from_iter([("PageSize", "401")]).page(vec![1], "PageSize", 400, 400).unwrap_err())
                .contains("Value '401' at 'pageSize' failed to satisfy constraint: Member must have value less than or equal to 400")
        );
    }
}
