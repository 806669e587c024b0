//! Hand-written additions to the generated protobuf types of [`super::proto`] (the element-type table is
//! [`super::DataType`]'s, in `dtype.rs`).

use super::proto::Version;

/// The newest IR version the schema knows (`onnx.Version.IR_VERSION`).
pub const IR_VERSION: i64 = Version::IrVersion as i64;

#[cfg(test)]
mod tests {
    use super::super::proto::*;
    use prost::Message;
    use std::mem::size_of;

    /// Repeated numbers are written packed only where onnx.proto says `[packed = true]` (as protobuf itself writes
    /// them, so re-encoded files keep their bytes), and read in either form.
    #[test]
    fn repeated_numbers_are_packed_as_the_proto_says_and_read_both_ways() {
        let t = TensorProto {
            dims: vec![2, 3],
            float_data: vec![1.0],
            ..Default::default()
        };
        // dims (field 1) unpacked: one varint per value; float_data (field 4) packed: one length-delimited run.
        let canonical = [0x08, 2, 0x08, 3, 0x22, 4, 0, 0, 0x80, 0x3f];
        assert_eq!(t.encode_to_vec(), canonical);
        assert_eq!(TensorProto::decode(&canonical[..]).unwrap(), t);
        let other_form = [0x0a, 2, 2, 3, 0x25, 0, 0, 0x80, 0x3f];
        assert_eq!(TensorProto::decode(&other_form[..]).unwrap(), t);

        let a = AttributeProto {
            ints: vec![5, 6],
            ..Default::default()
        };
        assert_eq!(a.encode_to_vec(), [0x40, 5, 0x40, 6]);
        assert_eq!(AttributeProto::decode(&[0x42, 2, 5, 6][..]).unwrap(), a);
    }

    /// tools/protogen's `BOXED` at work: unboxed, an AttributeProto would hold a TensorProto, a GraphProto, a
    /// SparseTensorProto and a TypeProto inline (~1.6 KB for a 2-byte empty attribute on the wire), and a
    /// SparseTensorProto two TensorProtos.
    #[test]
    fn large_optional_submessages_are_boxed() {
        let (attr, tensor, sparse) = (
            size_of::<AttributeProto>(),
            size_of::<TensorProto>(),
            size_of::<SparseTensorProto>(),
        );
        assert!(
            attr < tensor + 200,
            "AttributeProto is {attr} bytes (TensorProto {tensor})"
        );
        assert!(
            sparse < tensor / 4,
            "SparseTensorProto is {sparse} bytes (TensorProto {tensor})"
        );
        let (map, optional) = (size_of::<MapProto>(), size_of::<OptionalProto>());
        assert!(map < tensor / 2, "MapProto is {map} bytes");
        assert!(optional < tensor + 200, "OptionalProto is {optional} bytes");
        println!("AttributeProto {attr}, TensorProto {tensor}, SparseTensorProto {sparse}, MapProto {map}, OptionalProto {optional} bytes");
    }
}
