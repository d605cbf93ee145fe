//! `page` and `per_page`, as Fastly's list endpoints take them, and the `Link` header
//! that points at the other pages.

use axum::http::HeaderValue;

use super::api_error::{ApiError, ApiResult};
use crate::http::PublicBase;

/// One page of a list: the first is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Paging {
    /// `page` and `per_page` from a query string; None when it names neither. Other
    /// parameters (sorting) are ignored.
    pub fn from_query(
        raw: Option<&str>,
        default_per_page: usize,
        max_per_page: usize,
    ) -> ApiResult<Option<Paging>> {
        let mut paging: Option<Paging> = None;
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let is_page = match name.as_ref() {
                "page" => true,
                "per_page" => false,
                _ => continue,
            };
            let number = value
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1 && (is_page || *n <= max_per_page))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("Invalid {name}")).with_detail(format!(
                        "expected a number from 1 (per_page at most {max_per_page})"
                    ))
                })?;
            let p = paging.get_or_insert(Paging {
                page: 1,
                per_page: default_per_page,
            });
            if is_page {
                p.page = number;
            } else {
                p.per_page = number;
            }
        }
        Ok(paging)
    }

    /// Rows to skip before this page.
    pub fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// Pages that `records` rows fill (at least one, even when empty).
    pub fn total_pages(&self, records: usize) -> usize {
        records.div_ceil(self.per_page).max(1)
    }

    /// `Link` to the first, last, previous and next pages of `path` (no query).
    pub fn links(&self, base: &PublicBase, path: &str, records: usize) -> Option<HeaderValue> {
        let total = self.total_pages(records);
        let link = |n: usize, rel: &str| {
            format!(
                "<{}>; rel=\"{rel}\"",
                base.url(&format!("{path}?page={n}&per_page={}", self.per_page))
            )
        };
        let mut links = vec![link(1, "first"), link(total, "last")];
        if self.page > 1 {
            links.push(link((self.page - 1).min(total), "prev"));
        }
        if self.page < total {
            links.push(link(self.page + 1, "next"));
        }
        HeaderValue::from_str(&links.join(", ")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_read_and_bounded() {
        assert_eq!(Paging::from_query(None, 100, 100).unwrap(), None);
        assert_eq!(
            Paging::from_query(Some("page=2&per_page=50&sort=x"), 100, 100).unwrap(),
            Some(Paging {
                page: 2,
                per_page: 50
            })
        );
        assert_eq!(
            Paging::from_query(Some("page=3"), 20, 100).unwrap(),
            Some(Paging {
                page: 3,
                per_page: 20
            })
        );
        for bad in ["page=0", "per_page=101", "page=x", "per_page=0"] {
            assert!(Paging::from_query(Some(bad), 100, 100).is_err(), "{bad}");
        }
        let p = Paging {
            page: 2,
            per_page: 10,
        };
        assert_eq!(
            (p.offset(), p.total_pages(25), p.total_pages(0)),
            (10, 3, 1)
        );
    }
}
