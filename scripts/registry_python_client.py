#!/usr/bin/env python3
"""Drive `orderflow registry` with Confluent's own Python client and check every answer.

Usage: registry_python_client.py REGISTRY_URL

Needs confluent-kafka with its schema registry and Avro extras: `./dev up` installs them into
$ORDERFLOW_HOME/venv (default ~/.orderflow/venv); run this with that venv's python. The registry must be
empty of the subjects used here (schemas/tests/registry_python.rs gives it a fresh database).

Registers a schema, gets it by id, lists versions, looks it up, checks compatibility, sets the compatibility
level, and round-trips a record through AvroSerializer and AvroDeserializer (Confluent wire format). Prints
one line per step and, last, "registry_python_client: all checks passed"; exits 1 with a message naming the
step on the first mismatch, 2 when the client is not installed.
"""
import json
import sys

try:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.serialization import MessageField, SerializationContext
except ImportError as e:
    print(f"registry_python_client: confluent-kafka is not installed ({e}); run ./dev up", file=sys.stderr)
    sys.exit(2)

SUBJECT = "orders.events-value"
TOPIC = "orders.events"

V1 = {
    "type": "record",
    "name": "OrderPlaced",
    "namespace": "orderflow.orders",
    "fields": [
        {"name": "order_id", "type": "string"},
        {"name": "amount_cents", "type": "long"},
    ],
}
# Adds a field with a default: backward compatible.
V2 = {
    **V1,
    "fields": V1["fields"] + [{"name": "note", "type": ["null", "string"], "default": None}],
}
# Adds a field without a default: not backward compatible.
BREAKING = {
    **V1,
    "fields": V1["fields"] + [{"name": "region", "type": "string"}],
}


class Mismatch(Exception):
    pass


def check(step, got, expected):
    if got != expected:
        raise Mismatch(f"{step}: expected {expected!r}, got {got!r}")
    print(f"ok: {step}")


def expect_error(step, code, call):
    try:
        call()
    except SchemaRegistryError as e:
        check(f"{step} (error code)", e.error_code, code)
        return
    raise Mismatch(f"{step}: expected registry error {code}, the call succeeded")


def avro(schema):
    return Schema(json.dumps(schema), "AVRO")


def run(url):
    writer = SchemaRegistryClient({"url": url})
    # A second client with an empty cache, so every read below goes to the registry.
    def reader():
        return SchemaRegistryClient({"url": url})

    check("schema types", reader().get_schema_types(), ["AVRO"])

    id1 = writer.register_schema(SUBJECT, avro(V1))
    check("register v1 gives an id", isinstance(id1, int) and id1 > 0, True)
    check("register v1 again gives the same id", reader().register_schema(SUBJECT, avro(V1)), id1)

    fetched = reader().get_schema(id1)
    check("get by id: type", fetched.schema_type, "AVRO")
    check("get by id: schema", json.loads(fetched.schema_str), V1)

    check("subjects", reader().get_subjects(), [SUBJECT])
    check("versions after v1", reader().get_versions(SUBJECT), [1])

    check("compatibility of v2 with latest", reader().test_compatibility(SUBJECT, avro(V2)), True)
    check("compatibility of a breaking change", reader().test_compatibility(SUBJECT, avro(BREAKING)), False)
    expect_error("register a breaking change", 409, lambda: reader().register_schema(SUBJECT, avro(BREAKING)))

    id2 = writer.register_schema(SUBJECT, avro(V2))
    check("v2 has a new id", id2 != id1, True)
    check("versions after v2", reader().get_versions(SUBJECT), [1, 2])
    check("versions of id 1", [(v.subject, v.version) for v in reader().get_schema_versions(id1)], [(SUBJECT, 1)])
    check("compatibility of v2 with all versions", reader().test_compatibility_all_versions(SUBJECT, avro(V2)), True)

    latest = reader().get_latest_version(SUBJECT)
    check("latest: version", latest.version, 2)
    check("latest: id", latest.schema_id, id2)
    check("latest: schema", json.loads(latest.schema.schema_str), V2)
    one = reader().get_version(SUBJECT, 1)
    check("version 1: id", one.schema_id, id1)

    found = reader().lookup_schema(SUBJECT, avro(V1))
    check("lookup v1: version", found.version, 1)
    check("lookup v1: id", found.schema_id, id1)
    expect_error("lookup an unknown schema", 40403, lambda: reader().lookup_schema(SUBJECT, avro(BREAKING)))
    expect_error("versions of an unknown subject", 40401, lambda: reader().get_versions("nobody-value"))

    check("global level", reader().get_compatibility(), "BACKWARD")
    writer.set_compatibility(SUBJECT, "NONE")
    check("subject level after set", reader().get_compatibility(SUBJECT), "NONE")
    check("a breaking change under NONE", reader().test_compatibility(SUBJECT, avro(BREAKING)), True)
    writer.set_compatibility(level="FULL")
    check("global level after set", reader().get_compatibility(), "FULL")
    expect_error("an invalid level", 42203, lambda: writer.set_compatibility(SUBJECT, "SIDEWAYS"))

    # Serialize with v2 (already registered: the serializer finds its id), deserialize by the id in the bytes.
    serializer = AvroSerializer(reader(), json.dumps(V2))
    deserializer = AvroDeserializer(reader())
    ctx = SerializationContext(TOPIC, MessageField.VALUE)
    record = {"order_id": "o-42", "amount_cents": 1999, "note": "gift wrap"}
    data = serializer(record, ctx)
    check("wire format: magic byte", data[0], 0)
    check("wire format: schema id", int.from_bytes(data[1:5], "big"), id2)
    check("round trip", deserializer(data, ctx), record)

    check("versions are unchanged by serializing", reader().get_versions(SUBJECT), [1, 2])
    deleted = writer.delete_version(SUBJECT, 2)
    check("soft delete of version 2", deleted, 2)
    check("versions after the soft delete", reader().get_versions(SUBJECT), [1])


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        run(sys.argv[1].rstrip("/"))
    except Mismatch as e:
        print(f"registry_python_client: MISMATCH: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any client failure is a failed check, named
        print(f"registry_python_client: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print("registry_python_client: all checks passed")


if __name__ == "__main__":
    main()
