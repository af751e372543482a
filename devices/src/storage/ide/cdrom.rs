//! The tray, medium and lock of a removable drive, and the media events the guest polls for.
//!
//! Two parties move the tray: the guest (START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL) and the
//! host (QMP `eject`, `blockdev-open-tray`, `blockdev-change-medium`, ...). The state machine
//! follows QEMU's so that management tools see the same behaviour: a guest eject opens the tray
//! and leaves the medium in it; a host eject opens the tray and removes the medium; a locked
//! tray refuses the host unless forced, and then the guest is asked (an eject-request event).

use std::fmt;
use std::sync::Arc;

use crate::storage::block::BlockBackend;
use crate::storage::scsi_sense::Sense;

/// Why a host media operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaError {
    /// The guest prevented medium removal; the guest was sent an eject request. Retry after the
    /// guest opens the tray, or force.
    Locked,
    /// The operation needs the tray open (`blockdev-remove-medium`, `blockdev-insert-medium`).
    TrayClosed,
    /// A medium is already in the drive.
    MediumPresent,
    /// The drive is not a removable-media drive, or there is no drive there.
    NotRemovable,
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaError::Locked => "the guest has locked the tray; an eject request was sent to the guest, retry once it opens the tray or use force",
            MediaError::TrayClosed => "the tray is closed; open it first",
            MediaError::MediumPresent => "there is already a medium in the drive; remove it first",
            MediaError::NotRemovable => "the device has no removable medium",
        })
    }
}

impl std::error::Error for MediaError {}

/// Media event codes of GET EVENT STATUS NOTIFICATION, media class (MMC-3 section 6.5, table 108).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    NoChange = 0,
    EjectRequest = 1,
    NewMedia = 2,
    MediaRemoval = 3,
}

pub struct CdromMedia {
    pub(super) medium: Option<Arc<dyn BlockBackend>>,
    pub(super) tray_open: bool,
    pub(super) locked: bool,
    /// UNIT ATTENTION owed to the guest after a medium appeared.
    pub(super) unit_attention: bool,
    pub(super) eject_request: bool,
    pub(super) new_media: bool,
    pub(super) media_removal: bool,
    /// Tray movements (true = opened) not yet reported to the machine.
    tray_moves: Vec<bool>,
}

impl CdromMedia {
    /// A drive with its tray closed, holding `medium` (an empty drive at boot is normal).
    pub fn new(medium: Option<Arc<dyn BlockBackend>>) -> CdromMedia {
        CdromMedia {
            medium,
            tray_open: false,
            locked: false,
            unit_attention: false,
            eject_request: false,
            new_media: false,
            media_removal: false,
            tray_moves: Vec::new(),
        }
    }

    pub fn medium(&self) -> Option<&Arc<dyn BlockBackend>> {
        self.medium.as_ref()
    }
    pub fn tray_open(&self) -> bool {
        self.tray_open
    }
    pub fn locked(&self) -> bool {
        self.locked
    }

    /// The medium the guest can read now, or why not (SPC-3 / MMC-3 NOT READY sense).
    pub fn ready(&self) -> Result<&Arc<dyn BlockBackend>, Sense> {
        if self.tray_open {
            return Err(Sense::MEDIUM_NOT_PRESENT_TRAY_OPEN);
        }
        self.medium.as_ref().ok_or(Sense::MEDIUM_NOT_PRESENT)
    }

    fn move_tray(&mut self, open: bool) {
        if self.tray_open != open {
            self.tray_open = open;
            // Bounded: the controller drains this after every access and host operation.
            if self.tray_moves.len() < 16 {
                self.tray_moves.push(open);
            }
        }
    }

    /// Opens the tray (QMP `blockdev-open-tray`). A locked tray opens only when forced, which
    /// also unlocks it; otherwise the guest is asked to eject.
    pub fn open_tray(&mut self, force: bool) -> Result<(), MediaError> {
        if self.tray_open {
            return Ok(());
        }
        if self.locked && !force {
            self.eject_request = true;
            return Err(MediaError::Locked);
        }
        self.locked = false;
        self.move_tray(true);
        Ok(())
    }

    /// Closes the tray (QMP `blockdev-close-tray`, or the guest loading). A medium in the tray
    /// becomes new to the guest.
    pub fn close_tray(&mut self) {
        if !self.tray_open {
            return;
        }
        self.move_tray(false);
        if self.medium.is_some() {
            self.unit_attention = true;
            self.new_media = true;
            self.media_removal = false;
        }
    }

    /// Takes the medium out of the open tray (QMP `blockdev-remove-medium`).
    pub fn remove_medium(&mut self) -> Result<Option<Arc<dyn BlockBackend>>, MediaError> {
        if !self.tray_open {
            return Err(MediaError::TrayClosed);
        }
        let old = self.medium.take();
        if old.is_some() {
            self.media_removal = true;
            self.new_media = false;
        }
        Ok(old)
    }

    /// Puts a medium into the open, empty tray (QMP `blockdev-insert-medium`).
    pub fn insert_medium(&mut self, medium: Arc<dyn BlockBackend>) -> Result<(), MediaError> {
        if !self.tray_open {
            return Err(MediaError::TrayClosed);
        }
        if self.medium.is_some() {
            return Err(MediaError::MediumPresent);
        }
        self.medium = Some(medium);
        Ok(())
    }

    /// QMP `eject`: open the tray and remove the medium.
    pub fn eject(&mut self, force: bool) -> Result<(), MediaError> {
        self.open_tray(force)?;
        self.remove_medium().map(|_| ())
    }

    /// QMP `blockdev-change-medium` / `change`: open, swap the medium, close.
    pub fn change(&mut self, medium: Arc<dyn BlockBackend>, force: bool) -> Result<(), MediaError> {
        self.open_tray(force)?;
        self.remove_medium()?;
        self.insert_medium(medium)?;
        self.close_tray();
        Ok(())
    }

    /// The guest's START STOP UNIT with LoEj: eject opens the tray (the medium stays in it) unless
    /// the guest itself prevented removal (MMC-3 section 6.39).
    pub fn guest_eject(&mut self) -> Result<(), Sense> {
        if self.locked {
            return Err(Sense::MEDIUM_REMOVAL_PREVENTED);
        }
        self.move_tray(true);
        Ok(())
    }

    pub fn set_locked(&mut self, locked: bool) {
        self.locked = locked;
    }

    /// The one-shot UNIT ATTENTION after a medium change.
    pub fn take_unit_attention(&mut self) -> bool {
        std::mem::take(&mut self.unit_attention)
    }

    /// The next media event for GET EVENT STATUS NOTIFICATION, and the media status byte (bit 0
    /// tray open, bit 1 medium present; MMC-3 table 109). Reporting an event consumes it.
    pub fn take_event(&mut self) -> (MediaEvent, u8) {
        let event = if std::mem::take(&mut self.eject_request) {
            MediaEvent::EjectRequest
        } else if std::mem::take(&mut self.new_media) {
            MediaEvent::NewMedia
        } else if std::mem::take(&mut self.media_removal) {
            MediaEvent::MediaRemoval
        } else {
            MediaEvent::NoChange
        };
        let status = if self.tray_open {
            0x01
        } else if self.medium.is_some() {
            0x02
        } else {
            0
        };
        (event, status)
    }

    /// Tray movements since the last call (true = opened).
    pub fn take_tray_moves(&mut self) -> Vec<bool> {
        std::mem::take(&mut self.tray_moves)
    }

    /// Hard reset: SPC-3 section 6.13 ends a prevention of medium removal.
    pub fn hard_reset(&mut self) {
        self.locked = false;
    }
}
