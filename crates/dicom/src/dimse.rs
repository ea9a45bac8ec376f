//! DIMSE messages on an association (PS3.7): reading a request's command set, writing a
//! response's, and sending a data set in fragments the peer accepts. The services (storage,
//! worklist, performed procedure steps) build on these.

use dicom_core::{dicom_value, DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::association::server::AsyncServerAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::Pdu;

pub type Failure = Box<dyn std::error::Error + Send + Sync>;

// Command fields (PS3.7 §9.3 and §10.3).
pub const C_STORE_RQ: u16 = 0x0001;
pub const C_FIND_RQ: u16 = 0x0020;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const N_SET_RQ: u16 = 0x0120;
pub const N_CREATE_RQ: u16 = 0x0140;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
/// A response's command field is its request's with the high bit set.
pub const RESPONSE: u16 = 0x8000;

/// Command Data Set Type (0000,0800): no data set follows; any other value says one does.
pub const NO_DATA_SET: u16 = 0x0101;
const DATA_SET_FOLLOWS: u16 = 0x0001;

/// A request's command set, as far as the services here read it.
#[derive(Debug, Clone)]
pub struct Command {
    pub field: u16,
    /// Absent only in a C-CANCEL, which names the request it cancels instead.
    pub message_id: Option<u16>,
    pub responding_to: Option<u16>,
    /// The affected SOP class, else the requested one (N-SET names the requested).
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub has_data_set: bool,
}

fn command_ts() -> dicom_encoding::TransferSyntax {
    // Commands are always implicit VR little endian (PS3.7 §6.3.1).
    dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased()
}

/// Reads a command set; `Err` when it is unreadable or has no command field.
pub fn read_command(bytes: &[u8]) -> Result<Command, Failure> {
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &command_ts())?;
    let uint = |tag| obj.element(tag).ok().and_then(|e| e.uint16().ok());
    let text = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(Command {
        field: uint(tags::COMMAND_FIELD).ok_or("a command without a command field")?,
        message_id: uint(tags::MESSAGE_ID),
        responding_to: uint(tags::MESSAGE_ID_BEING_RESPONDED_TO),
        sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID)
            .or_else(|| text(tags::REQUESTED_SOP_CLASS_UID))
            .unwrap_or_default(),
        sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID)
            .or_else(|| text(tags::REQUESTED_SOP_INSTANCE_UID))
            .unwrap_or_default(),
        has_data_set: uint(tags::COMMAND_DATA_SET_TYPE) != Some(NO_DATA_SET),
    })
}

/// A response to `request` with `status`; `instance` names the affected SOP instance where the
/// service's response carries one, `extra` adds what a status calls for (error comment,
/// offending element).
pub fn response(
    request: &Command,
    status: u16,
    instance: Option<&str>,
    data_set_follows: bool,
    extra: Vec<DataElement<InMemDicomObject>>,
) -> InMemDicomObject {
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            dicom_value!(Str, request.sop_class_uid.as_str()),
        ),
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            dicom_value!(U16, [request.field | RESPONSE]),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            dicom_value!(U16, [request.message_id.unwrap_or_default()]),
        ),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            dicom_value!(
                U16,
                [if data_set_follows {
                    DATA_SET_FOLLOWS
                } else {
                    NO_DATA_SET
                }]
            ),
        ),
        DataElement::new(tags::STATUS, VR::US, dicom_value!(U16, [status])),
    ];
    if let Some(instance) = instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            dicom_value!(Str, instance),
        ));
    }
    elements.extend(extra);
    InMemDicomObject::command_from_element_iter(elements)
}

/// Error Comment (0000,0902): a status's reason, in at most 64 characters.
pub fn error_comment(why: &str) -> DataElement<InMemDicomObject> {
    let why: String = why.chars().filter(char::is_ascii).take(64).collect();
    DataElement::new(tags::ERROR_COMMENT, VR::LO, dicom_value!(Str, why.as_str()))
}

/// Offending Element (0000,0901) or Attribute Identifier List (0000,1005): the tags at fault.
pub fn tag_list(list: Tag, at_fault: &[Tag]) -> DataElement<InMemDicomObject> {
    DataElement::new(
        list,
        VR::AT,
        dicom_core::PrimitiveValue::Tags(at_fault.iter().copied().collect()),
    )
}

/// Sends a command set in one fragment (command sets are small).
pub async fn send_command<S>(
    association: &mut AsyncServerAssociation<S>,
    presentation_context_id: u8,
    command: &InMemDicomObject,
) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let mut bytes = Vec::new();
    command.write_dataset_with_ts(&mut bytes, &command_ts())?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: bytes,
            }],
        })
        .await?;
    Ok(())
}

/// Sends an encoded data set in as many P-DATA fragments as the peer's maximum PDU length
/// requires (PS3.8 §9.3.5: the length counts each value item's 6 bytes of header).
pub async fn send_data<S>(
    association: &mut AsyncServerAssociation<S>,
    presentation_context_id: u8,
    data: &[u8],
) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let peer_max = dicom_ul::association::Association::peer_max_pdu_length(association) as usize;
    let chunk = match peer_max {
        // 0: the peer set no limit.
        0 => 1 << 20,
        max => max.saturating_sub(6).max(1),
    };
    let fragments: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(chunk).collect()
    };
    let last = fragments.len() - 1;
    for (n, fragment) in fragments.into_iter().enumerate() {
        association
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id,
                    value_type: PDataValueType::Data,
                    is_last: n == last,
                    data: fragment.to_vec(),
                }],
            })
            .await?;
    }
    Ok(())
}
