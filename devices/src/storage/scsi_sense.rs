//! SCSI sense data (SPC-3 section 4.5): the sense key / additional sense code pairs the ATAPI
//! CD-ROM reports, and the fixed-format sense buffer of REQUEST SENSE.

/// Sense keys (SPC-3 table 27).
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const ABORTED_COMMAND: u8 = 0xb;
}

/// A sense key with its additional sense code and qualifier (SPC-3 annex D.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

impl Sense {
    pub const NO_SENSE: Sense = Sense { key: key::NO_SENSE, asc: 0, ascq: 0 };
    /// 2/3a/00 MEDIUM NOT PRESENT.
    pub const MEDIUM_NOT_PRESENT: Sense = Sense { key: key::NOT_READY, asc: 0x3a, ascq: 0x00 };
    /// 2/3a/02 MEDIUM NOT PRESENT - TRAY OPEN.
    pub const MEDIUM_NOT_PRESENT_TRAY_OPEN: Sense = Sense { key: key::NOT_READY, asc: 0x3a, ascq: 0x02 };
    /// 3/11/00 UNRECOVERED READ ERROR.
    pub const UNRECOVERED_READ_ERROR: Sense = Sense { key: key::MEDIUM_ERROR, asc: 0x11, ascq: 0x00 };
    /// 5/20/00 INVALID COMMAND OPERATION CODE.
    pub const INVALID_OPCODE: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x20, ascq: 0x00 };
    /// 5/21/00 LOGICAL BLOCK ADDRESS OUT OF RANGE.
    pub const LBA_OUT_OF_RANGE: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x21, ascq: 0x00 };
    /// 5/24/00 INVALID FIELD IN CDB.
    pub const INVALID_FIELD_IN_CDB: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x24, ascq: 0x00 };
    /// 5/39/00 SAVING PARAMETERS NOT SUPPORTED.
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x39, ascq: 0x00 };
    /// 5/53/02 MEDIUM REMOVAL PREVENTED.
    pub const MEDIUM_REMOVAL_PREVENTED: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x53, ascq: 0x02 };
    /// 5/64/00 ILLEGAL MODE FOR THIS TRACK.
    pub const ILLEGAL_MODE_FOR_TRACK: Sense = Sense { key: key::ILLEGAL_REQUEST, asc: 0x64, ascq: 0x00 };
    /// B/00/00 ABORTED COMMAND, no additional information (the host bus failed the transfer).
    pub const ABORTED_COMMAND: Sense = Sense { key: key::ABORTED_COMMAND, asc: 0x00, ascq: 0x00 };
    /// 6/28/00 NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
    pub const MEDIUM_MAY_HAVE_CHANGED: Sense = Sense { key: key::UNIT_ATTENTION, asc: 0x28, ascq: 0x00 };

    /// Fixed-format sense data, current errors (SPC-3 section 4.5.3, table 26).
    pub fn fixed_format(&self) -> [u8; 18] {
        let mut b = [0u8; 18];
        b[0] = 0x70; // current error, fixed format (VALID = 0: no INFORMATION field)
        b[2] = self.key & 0x0f;
        b[7] = 10; // ADDITIONAL SENSE LENGTH: bytes 8..18
        b[12] = self.asc;
        b[13] = self.ascq;
        b
    }
}
