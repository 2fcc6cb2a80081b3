//! Site ids and their small ordinals (wavesync_sites): this replica is ordinal 0; a site
//! added in an open transaction is looked up again where a rollback may have undone it.

use super::{SiteId, SiteRow, State};
use crate::error::{fail, Result};
use rusqlite::OptionalExtension;

impl State {
    pub fn site_id(&mut self) -> Result<SiteId> {
        self.ensure_meta()?;
        Ok(self.site_id.unwrap_or_default())
    }

    /// The ordinal of `site` in wavesync_sites, adding it when `create` is set.
    pub fn site_ord(&mut self, site: &SiteId, create: bool) -> Result<Option<i64>> {
        if *site == self.site_id()? {
            return Ok(Some(0));
        }
        if let Some((ord, SiteRow::Committed | SiteRow::Heard)) = self.sites.get(site) {
            return Ok(Some(*ord));
        }
        let added_in_tx = if self.via_changes_table { SiteRow::Heard } else { SiteRow::Unsure };
        // Unknown, or added in this transaction and possibly rolled back since: ask the table.
        self.forget_site(site);
        let found: Option<i64> = self
            .stmt("SELECT ord FROM wavesync_sites WHERE site_id = ?1")?
            .query_row([&site[..]], |r| r.get(0))
            .optional()?;
        let ord = match found {
            Some(o) => o,
            None if create => {
                self.stmt("INSERT INTO wavesync_sites (site_id) VALUES (?1)")?.execute([&site[..]])?;
                let o = self.conn.last_insert_rowid();
                self.sites_added_in_tx = true;
                self.sites.insert(*site, (o, added_in_tx));
                self.ords.insert(o, *site);
                return Ok(Some(o));
            }
            None => return Ok(None),
        };
        // Found inside a transaction that added sites, the row may be one of them (and a
        // statement rollback may take it back): confirm at the transaction's end.
        let row = if self.tx.is_none() || !self.sites_added_in_tx { SiteRow::Committed } else { added_in_tx };
        self.sites.insert(*site, (ord, row));
        self.ords.insert(ord, *site);
        Ok(Some(ord))
    }

    pub fn site_of(&mut self, ord: i64) -> Result<SiteId> {
        if ord == 0 {
            return self.site_id();
        }
        if let Some(s) = self.ords.get(&ord) {
            return Ok(*s);
        }
        let b: Vec<u8> = self
            .stmt("SELECT site_id FROM wavesync_sites WHERE ord = ?1")?
            .query_row([ord], |r| r.get(0))
            .optional()?
            .ok_or_else(|| fail(format!("wavesync: unknown site ordinal {ord} in a clock")))?;
        let mut s = [0u8; 16];
        if b.len() != 16 {
            return Err(fail("wavesync: malformed site id in wavesync_sites"));
        }
        s.copy_from_slice(&b);
        self.ords.insert(ord, s);
        Ok(s)
    }
}
