"""What HL7 v2 calls a segment, a field and a component: the names of the 2.5.1
standard for the segments Switchboard's mappings read, so that a person reading a
parsed message sees "PID-5.1 (Patient Name, Family Name)" rather than a bare path.

A table, not a grammar: a segment, field or component it does not know has no name,
and a Z-segment never has one. Components are named by the field's data type; a field
whose type varies (OBX-5, by OBX-2) has none named.
"""

from __future__ import annotations

SEGMENTS = {
    "MSH": "Message Header", "EVN": "Event Type", "PID": "Patient Identification",
    "PD1": "Patient Additional Demographic", "NK1": "Next of Kin / Associated Parties",
    "PV1": "Patient Visit", "PV2": "Patient Visit - Additional Information",
    "ORC": "Common Order", "OBR": "Observation Request", "OBX": "Observation/Result",
    "NTE": "Notes and Comments", "AL1": "Patient Allergy Information",
    "DG1": "Diagnosis", "MRG": "Merge Patient Information",
    "SCH": "Scheduling Activity Information", "AIS": "Appointment Information - Service",
    "AIG": "Appointment Information - General Resource",
    "AIL": "Appointment Information - Location Resource",
    "AIP": "Appointment Information - Personnel Resource", "RGS": "Resource Group",
    "RF1": "Referral Information", "PRD": "Provider Data",
    "TXA": "Transcription Document Header", "IN1": "Insurance", "GT1": "Guarantor",
    "SPM": "Specimen", "TQ1": "Timing/Quantity", "MSA": "Message Acknowledgment",
    "ERR": "Error", "ROL": "Role",
}

FIELDS: dict[str, tuple[str, ...]] = {
    "MSH": ("Field Separator", "Encoding Characters", "Sending Application",
            "Sending Facility", "Receiving Application", "Receiving Facility",
            "Date/Time of Message", "Security", "Message Type", "Message Control ID",
            "Processing ID", "Version ID", "Sequence Number", "Continuation Pointer",
            "Accept Acknowledgment Type", "Application Acknowledgment Type",
            "Country Code", "Character Set", "Principal Language of Message",
            "Alternate Character Set Handling Scheme", "Message Profile Identifier"),
    "EVN": ("Event Type Code", "Recorded Date/Time", "Date/Time Planned Event",
            "Event Reason Code", "Operator ID", "Event Occurred", "Event Facility"),
    "PID": ("Set ID - PID", "Patient ID", "Patient Identifier List",
            "Alternate Patient ID - PID", "Patient Name", "Mother's Maiden Name",
            "Date/Time of Birth", "Administrative Sex", "Patient Alias", "Race",
            "Patient Address", "County Code", "Phone Number - Home",
            "Phone Number - Business", "Primary Language", "Marital Status", "Religion",
            "Patient Account Number", "SSN Number - Patient",
            "Driver's License Number - Patient", "Mother's Identifier", "Ethnic Group",
            "Birth Place", "Multiple Birth Indicator", "Birth Order", "Citizenship",
            "Veterans Military Status", "Nationality", "Patient Death Date and Time",
            "Patient Death Indicator", "Identity Unknown Indicator",
            "Identity Reliability Code", "Last Update Date/Time", "Last Update Facility",
            "Species Code", "Breed Code", "Strain", "Production Class Code",
            "Tribal Citizenship"),
    "PD1": ("Living Dependency", "Living Arrangement", "Patient Primary Facility",
            "Patient Primary Care Provider Name & ID No.", "Student Indicator",
            "Handicap", "Living Will Code", "Organ Donor Code", "Separate Bill",
            "Duplicate Patient", "Publicity Code", "Protection Indicator",
            "Protection Indicator Effective Date", "Place of Worship",
            "Advance Directive Code", "Immunization Registry Status",
            "Immunization Registry Status Effective Date", "Publicity Code Effective Date",
            "Military Branch", "Military Rank/Grade", "Military Status"),
    "NK1": ("Set ID - NK1", "Name", "Relationship", "Address", "Phone Number",
            "Business Phone Number", "Contact Role", "Start Date", "End Date",
            "Next of Kin / Associated Parties Job Title",
            "Next of Kin / Associated Parties Job Code/Class",
            "Next of Kin / Associated Parties Employee Number", "Organization Name - NK1",
            "Marital Status", "Administrative Sex", "Date/Time of Birth"),
    "PV1": ("Set ID - PV1", "Patient Class", "Assigned Patient Location",
            "Admission Type", "Preadmit Number", "Prior Patient Location",
            "Attending Doctor", "Referring Doctor", "Consulting Doctor",
            "Hospital Service", "Temporary Location", "Preadmit Test Indicator",
            "Re-admission Indicator", "Admit Source", "Ambulatory Status",
            "VIP Indicator", "Admitting Doctor", "Patient Type", "Visit Number",
            "Financial Class", "Charge Price Indicator", "Courtesy Code",
            "Credit Rating", "Contract Code", "Contract Effective Date",
            "Contract Amount", "Contract Period", "Interest Code",
            "Transfer to Bad Debt Code", "Transfer to Bad Debt Date",
            "Bad Debt Agency Code", "Bad Debt Transfer Amount",
            "Bad Debt Recovery Amount", "Delete Account Indicator",
            "Delete Account Date", "Discharge Disposition", "Discharged to Location",
            "Diet Type", "Servicing Facility", "Bed Status", "Account Status",
            "Pending Location", "Prior Temporary Location", "Admit Date/Time",
            "Discharge Date/Time", "Current Patient Balance", "Total Charges",
            "Total Adjustments", "Total Payments", "Alternate Visit ID",
            "Visit Indicator", "Other Healthcare Provider"),
    "PV2": ("Prior Pending Location", "Accommodation Code", "Admit Reason",
            "Transfer Reason", "Patient Valuables", "Patient Valuables Location",
            "Visit User Code", "Expected Admit Date/Time",
            "Expected Discharge Date/Time"),
    "ORC": ("Order Control", "Placer Order Number", "Filler Order Number",
            "Placer Group Number", "Order Status", "Response Flag", "Quantity/Timing",
            "Parent", "Date/Time of Transaction", "Entered By", "Verified By",
            "Ordering Provider", "Enterer's Location", "Call Back Phone Number",
            "Order Effective Date/Time", "Order Control Code Reason",
            "Entering Organization", "Entering Device", "Action By",
            "Advanced Beneficiary Notice Code", "Ordering Facility Name",
            "Ordering Facility Address", "Ordering Facility Phone Number",
            "Ordering Provider Address", "Order Status Modifier"),
    "OBR": ("Set ID - OBR", "Placer Order Number", "Filler Order Number",
            "Universal Service Identifier", "Priority - OBR", "Requested Date/Time",
            "Observation Date/Time", "Observation End Date/Time", "Collection Volume",
            "Collector Identifier", "Specimen Action Code", "Danger Code",
            "Relevant Clinical Information", "Specimen Received Date/Time",
            "Specimen Source", "Ordering Provider", "Order Callback Phone Number",
            "Placer Field 1", "Placer Field 2", "Filler Field 1", "Filler Field 2",
            "Results Rpt/Status Chng - Date/Time", "Charge to Practice",
            "Diagnostic Serv Sect ID", "Result Status", "Parent Result",
            "Quantity/Timing", "Result Copies To", "Parent", "Transportation Mode",
            "Reason for Study", "Principal Result Interpreter",
            "Assistant Result Interpreter", "Technician", "Transcriptionist",
            "Scheduled Date/Time"),
    "OBX": ("Set ID - OBX", "Value Type", "Observation Identifier",
            "Observation Sub-ID", "Observation Value", "Units", "References Range",
            "Abnormal Flags", "Probability", "Nature of Abnormal Test",
            "Observation Result Status", "Effective Date of Reference Range",
            "User Defined Access Checks", "Date/Time of the Observation",
            "Producer's ID", "Responsible Observer", "Observation Method",
            "Equipment Instance Identifier", "Date/Time of the Analysis"),
    "NTE": ("Set ID - NTE", "Source of Comment", "Comment", "Comment Type"),
    "AL1": ("Set ID - AL1", "Allergen Type Code", "Allergen Code/Mnemonic/Description",
            "Allergy Severity Code", "Allergy Reaction Code", "Identification Date"),
    "DG1": ("Set ID - DG1", "Diagnosis Coding Method", "Diagnosis Code - DG1",
            "Diagnosis Description", "Diagnosis Date/Time", "Diagnosis Type"),
    "MRG": ("Prior Patient Identifier List", "Prior Alternate Patient ID",
            "Prior Patient Account Number", "Prior Patient ID", "Prior Visit Number",
            "Prior Alternate Visit ID", "Prior Patient Name"),
    "SCH": ("Placer Appointment ID", "Filler Appointment ID", "Occurrence Number",
            "Placer Group Number", "Schedule ID", "Event Reason", "Appointment Reason",
            "Appointment Type", "Appointment Duration", "Appointment Duration Units",
            "Appointment Timing Quantity", "Placer Contact Person",
            "Placer Contact Phone Number", "Placer Contact Address",
            "Placer Contact Location", "Filler Contact Person",
            "Filler Contact Phone Number", "Filler Contact Address",
            "Filler Contact Location", "Entered By Person", "Entered By Phone Number",
            "Entered By Location", "Parent Placer Appointment ID",
            "Parent Filler Appointment ID", "Filler Status Code"),
    "AIP": ("Set ID - AIP", "Segment Action Code", "Personnel Resource ID",
            "Resource Type", "Resource Group", "Start Date/Time", "Start Date/Time Offset",
            "Start Date/Time Offset Units", "Duration", "Duration Units",
            "Allow Substitution Code", "Filler Status Code"),
    "AIL": ("Set ID - AIL", "Segment Action Code", "Location Resource ID",
            "Location Type-AIL", "Location Group", "Start Date/Time",
            "Start Date/Time Offset", "Start Date/Time Offset Units", "Duration",
            "Duration Units", "Allow Substitution Code", "Filler Status Code"),
    "RF1": ("Referral Status", "Referral Priority", "Referral Type",
            "Referral Disposition", "Referral Category", "Originating Referral Identifier",
            "Effective Date", "Expiration Date", "Process Date", "Referral Reason",
            "External Referral Identifier"),
    "PRD": ("Provider Role", "Provider Name", "Provider Address", "Provider Location",
            "Provider Communication Information", "Preferred Method of Contact",
            "Provider Identifiers", "Effective Start Date of Provider Role",
            "Effective End Date of Provider Role"),
    "TXA": ("Set ID - TXA", "Document Type", "Document Content Presentation",
            "Activity Date/Time", "Primary Activity Provider Code/Name",
            "Origination Date/Time", "Transcription Date/Time", "Edit Date/Time",
            "Originator Code/Name", "Assigned Document Authenticator",
            "Transcriptionist Code/Name", "Unique Document Number",
            "Parent Document Number", "Placer Order Number", "Filler Order Number",
            "Unique Document File Name", "Document Completion Status",
            "Document Confidentiality Status", "Document Availability Status",
            "Document Storage Status", "Document Change Reason",
            "Authentication Person, Time Stamp", "Distributed Copies"),
    "MSA": ("Acknowledgment Code", "Message Control ID", "Text Message"),
}
"""Field names by segment, from field 1."""

_TYPES: dict[str, tuple[str, ...]] = {
    "HD": ("MSH-3", "MSH-4", "MSH-5", "MSH-6", "PID-34", "ORC-17"),
    "MSG": ("MSH-9",),
    "PT": ("MSH-11",),
    "VID": ("MSH-12",),
    "TS": ("MSH-7", "EVN-2", "EVN-3", "EVN-6", "PID-7", "PID-29", "PID-33", "PV1-44",
           "PV1-45", "ORC-9", "ORC-15", "OBR-6", "OBR-7", "OBR-8", "OBR-14", "OBR-22",
           "OBR-36", "OBX-14", "OBX-19", "DG1-5", "TXA-4", "TXA-6", "TXA-7", "TXA-8"),
    "CX": ("PID-2", "PID-3", "PID-4", "PID-18", "PID-21", "MRG-1", "MRG-2", "MRG-3",
           "MRG-4", "MRG-5", "MRG-6", "PV1-5", "PV1-19", "PV1-50"),
    "XPN": ("PID-5", "PID-6", "PID-9", "NK1-2", "MRG-7", "PRD-2"),
    "XAD": ("PID-11", "NK1-4", "PRD-3", "ORC-22", "ORC-24"),
    "XTN": ("PID-13", "PID-14", "NK1-5", "NK1-6", "ORC-14", "ORC-23", "OBR-17", "PRD-5"),
    "CWE": ("PID-10", "PID-15", "PID-16", "PID-17", "PID-22", "PID-26", "PID-28",
            "EVN-4", "OBX-3", "OBX-6", "OBR-4", "AL1-3", "DG1-3", "NK1-3", "NK1-7",
            "ORC-16", "SCH-6", "SCH-7", "SCH-8", "RF1-1", "RF1-2", "RF1-3", "RF1-5",
            "RF1-10", "PRD-1", "AIP-4"),
    "PL": ("PV1-3", "PV1-6", "PV1-11", "PV1-42", "PV1-43", "ORC-13", "PRD-4"),
    "XCN": ("EVN-5", "PD1-4", "PV1-7", "PV1-8", "PV1-9", "PV1-17", "PV1-52", "ORC-10",
            "ORC-11", "ORC-12", "ORC-19", "OBR-16", "OBR-28", "OBX-16", "TXA-5", "TXA-9",
            "TXA-10", "TXA-11", "AIP-3", "SCH-12", "SCH-16", "SCH-20"),
    "XON": ("PD1-3", "ORC-21"),
    "EI": ("ORC-2", "ORC-3", "ORC-4", "OBR-2", "OBR-3", "SCH-1", "SCH-2", "SCH-4",
           "RF1-6", "RF1-11", "TXA-12", "TXA-13", "TXA-14", "TXA-15"),
}
COMPONENTS: dict[str, tuple[str, ...]] = {
    "HD": ("Namespace ID", "Universal ID", "Universal ID Type"),
    "MSG": ("Message Code", "Trigger Event", "Message Structure"),
    "PT": ("Processing ID", "Processing Mode"),
    "VID": ("Version ID", "Internationalization Code", "International Version ID"),
    "TS": ("Time", "Degree of Precision"),
    "CX": ("ID Number", "Check Digit", "Check Digit Scheme", "Assigning Authority",
           "Identifier Type Code", "Assigning Facility", "Effective Date",
           "Expiration Date"),
    "XPN": ("Family Name", "Given Name", "Second and Further Given Names or Initials",
            "Suffix", "Prefix", "Degree", "Name Type Code", "Name Representation Code"),
    "XAD": ("Street Address", "Other Designation", "City", "State or Province",
            "Zip or Postal Code", "Country", "Address Type",
            "Other Geographic Designation", "County/Parish Code"),
    "XTN": ("Telephone Number", "Telecommunication Use Code",
            "Telecommunication Equipment Type", "Email Address", "Country Code",
            "Area/City Code", "Local Number", "Extension", "Any Text",
            "Extension Prefix", "Speed Dial Code", "Unformatted Telephone Number"),
    "CWE": ("Identifier", "Text", "Name of Coding System", "Alternate Identifier",
            "Alternate Text", "Name of Alternate Coding System"),
    "PL": ("Point of Care", "Room", "Bed", "Facility", "Location Status",
           "Person Location Type", "Building", "Floor", "Location Description"),
    "XCN": ("ID Number", "Family Name", "Given Name",
            "Second and Further Given Names or Initials", "Suffix", "Prefix", "Degree",
            "Source Table", "Assigning Authority", "Name Type Code"),
    "XON": ("Organization Name", "Organization Name Type Code", "ID Number"),
    "EI": ("Entity Identifier", "Namespace ID", "Universal ID", "Universal ID Type"),
}
"""Component names by data type, from component 1."""
DATA_TYPES = {field: kind for kind, fields in _TYPES.items() for field in fields}
"""The data type of a field (``PID-5``), for the fields named above whose type is
fixed and composite."""


def segment_name(segment: str) -> str | None:
    return SEGMENTS.get(segment)


def field_name(segment: str, field: int) -> str | None:
    names = FIELDS.get(segment, ())
    return names[field - 1] if 0 < field <= len(names) else None


def component_name(segment: str, field: int, component: int) -> str | None:
    names = COMPONENTS.get(DATA_TYPES.get(f"{segment}-{field}", ""), ())
    return names[component - 1] if 0 < component <= len(names) else None


def describe(segment: str, field: int | None = None, component: int | None = None) -> str:
    """"Patient Name, Family Name" for PID-5.1; as much as is known, else ""."""
    if field is None:
        return segment_name(segment) or ""
    name = field_name(segment, field)
    if name is None:
        return ""
    part = None if component is None else component_name(segment, field, component)
    return name if part is None else f"{name}, {part}"
