//! RFB protocol constants (RFC 6143 "The Remote Framebuffer Protocol", and the QEMU
//! extensions in QEMU `ui/vnc.h`).

/// RFC 6143 7.1.1: the server's ProtocolVersion (we speak 3.8 and accept 3.3 and 3.7).
pub const SERVER_VERSION: &[u8; 12] = b"RFB 003.008\n";

// RFC 6143 7.1.2 / 7.2: security types.
pub const SECURITY_INVALID: u8 = 0;
pub const SECURITY_NONE: u8 = 1;
pub const SECURITY_VNC_AUTH: u8 = 2;
/// RFC 6143 7.1.3 SecurityResult.
pub const SECURITY_RESULT_OK: u32 = 0;
pub const SECURITY_RESULT_FAILED: u32 = 1;
/// RFC 6143 7.2.2: the VNC Authentication challenge length.
pub const CHALLENGE_LEN: usize = 16;

// RFC 6143 7.5: client-to-server messages.
pub const MSG_SET_PIXEL_FORMAT: u8 = 0;
pub const MSG_SET_ENCODINGS: u8 = 2;
pub const MSG_FRAMEBUFFER_UPDATE_REQUEST: u8 = 3;
pub const MSG_KEY_EVENT: u8 = 4;
pub const MSG_POINTER_EVENT: u8 = 5;
pub const MSG_CLIENT_CUT_TEXT: u8 = 6;
/// QEMU's client message (ui/vnc.h VNC_MSG_CLIENT_QEMU) with a sub-type byte.
pub const MSG_QEMU: u8 = 255;
pub const QEMU_EXT_KEY_EVENT: u8 = 0;
pub const QEMU_AUDIO: u8 = 1;
// QEMU audio sub-operations (u16): enable, disable, set format (u8 fmt, u8 channels, u32 freq).
pub const QEMU_AUDIO_ENABLE: u16 = 0;
pub const QEMU_AUDIO_DISABLE: u16 = 1;
pub const QEMU_AUDIO_SET_FORMAT: u16 = 2;

// RFC 6143 7.6: server-to-client messages.
pub const MSG_FRAMEBUFFER_UPDATE: u8 = 0;
pub const MSG_SET_COLOUR_MAP_ENTRIES: u8 = 1;

// RFC 6143 7.7 / 7.8 and QEMU ui/vnc.h: encodings.
pub const ENC_RAW: i32 = 0;
pub const ENC_COPY_RECT: i32 = 1;
pub const ENC_ZRLE: i32 = 16;
pub const ENC_CURSOR: i32 = -239;
pub const ENC_DESKTOP_SIZE: i32 = -223;
pub const ENC_POINTER_TYPE_CHANGE: i32 = -257;
pub const ENC_EXT_KEY_EVENT: i32 = -258;

/// QEMU caps ClientCutText at 1 MiB (ui/vnc.c protocol_client_msg) and drops the client past it.
pub const MAX_CUT_TEXT: u32 = 1 << 20;
/// RFC 6143 7.7.6: ZRLE tiles are 64x64.
pub const ZRLE_TILE: u32 = 64;
