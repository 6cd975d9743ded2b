"""The service-model walker: each kind of constraint refused in AWS's words, beside a control."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.model import ShapeResolver

from localcloud import shapes
from localcloud.errors import AwsError
from localcloud.hosts import instances
from localcloud.jobs import validation

SHAPES: dict[str, Any] = {
    "Request": {
        "type": "structure",
        "required": ["Name"],
        "members": {
            "Name": {"shape": "Name"},
            "Count": {"shape": "Count"},
            "Big": {"shape": "Big"},
            "Ratio": {"shape": "Ratio"},
            "Flag": {"shape": "Flag"},
            "When": {"shape": "When"},
            "Mode": {"shape": "Mode"},
            "Label": {"shape": "Label"},
            "Items": {"shape": "Items"},
            "Params": {"shape": "Params"},
            "Inner": {"shape": "Inner"},
        },
    },
    "Name": {"type": "string", "min": 1, "max": 8, "pattern": "[a-z]+"},
    "Count": {"type": "integer", "min": 1, "max": 10},
    "Big": {"type": "long"},
    "Ratio": {"type": "float", "min": 0.25},
    "Flag": {"type": "boolean"},
    "When": {"type": "timestamp"},
    "Mode": {"type": "string", "enum": ["File", "Pipe"]},
    "Label": {"type": "string", "pattern": r"[\p{L}\p{N} ]*"},
    "Items": {"type": "list", "member": {"shape": "Item"}, "min": 1, "max": 2},
    "Item": {
        "type": "structure",
        "required": ["Key"],
        "members": {"Key": {"shape": "Name"}, "Value": {"shape": "Name"}},
    },
    "Params": {
        "type": "map",
        "key": {"shape": "ParamKey"},
        "value": {"shape": "ParamValue"},
        "max": 2,
    },
    "ParamKey": {"type": "string", "min": 0, "max": 3, "pattern": ".*"},
    "ParamValue": {"type": "string", "min": 0, "max": 5, "pattern": ".*"},
    "Inner": {"type": "structure", "members": {"InnerName": {"shape": "Name"}}},
}
REQUEST = ShapeResolver(SHAPES).get_shape_by_name("Request")


def problems(body: dict[str, Any], overlay: Any = None) -> list[str]:
    return shapes.check(REQUEST, {"Name": "ok", **body}, overlay)[1]


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(shapes.SerializationError) as caught:
        shapes.check(REQUEST, {"Name": "ok", **body})
    return str(caught.value)


def constraint(path: str, value: str, text: str) -> str:
    return f"Value '{value}' at '{path}' failed to satisfy constraint: {text}"


@pytest.mark.parametrize(
    ("member", "bad", "message", "good"),
    [
        ("Name", 12, "NUMBER_VALUE can not be converted to a String", "abc"),
        ("Name", True, "BOOLEAN_VALUE can not be converted to a String", "abc"),
        ("Name", {"a": 1}, "Start of structure or map found where not expected", "abc"),
        ("Name", ["a"], "Start of list found where not expected", "abc"),
        ("Count", "abc", "STRING_VALUE can not be converted to an Integer", 3),
        ("Count", True, "BOOLEAN_VALUE can not be converted to an Integer", 3),
        ("Count", 2**31, "NUMBER_VALUE can not be converted to an Integer", 10),
        ("Count", float("nan"), "NUMBER_VALUE can not be converted to an Integer", 3),
        ("Big", 2**63, "NUMBER_VALUE can not be converted to a Long", 2**40),
        ("Ratio", "0.5", "STRING_VALUE can not be converted to a Float", 0.5),
        ("Flag", "true", "STRING_VALUE can not be converted to a Boolean", True),
        ("Flag", 1, "NUMBER_VALUE can not be converted to a Boolean", False),
        ("When", "2026-01-01", "STRING_VALUE can not be converted to a Date", 1767225600),
        ("Items", "a", "STRING_VALUE can not be converted to a List", [{"Key": "a"}]),
        ("Params", ["a"], "Start of list found where not expected", {"a": "b"}),
        ("Inner", 5, "NUMBER_VALUE can not be converted to a Structure", {"InnerName": "a"}),
    ],
)
def test_a_value_of_the_wrong_type_is_a_serialization_error(member, bad, message, good):
    assert refusal({member: bad}) == message
    assert problems({member: good}) == []


def test_a_wrong_type_deep_inside_is_found_too():
    assert refusal({"Items": [{"Key": 7}]}) == "NUMBER_VALUE can not be converted to a String"
    assert refusal({"Params": {"a": 1}}) == "NUMBER_VALUE can not be converted to a String"
    assert problems({"Items": [{"Key": "a"}], "Params": {"a": "1"}}) == []


def test_a_missing_or_null_required_member_must_not_be_null():
    expected = ["Value null at 'name' failed to satisfy constraint: Member must not be null"]
    assert shapes.check(REQUEST, {})[1] == expected
    assert shapes.check(REQUEST, {"Name": None})[1] == expected
    assert shapes.check(REQUEST, {"Name": "a"})[1] == []


def test_string_length_bounds():
    assert problems({"Name": "abcdefghi"}) == [
        constraint("name", "abcdefghi", "Member must have length less than or equal to 8")
    ]
    assert problems({"Name": ""}) == [
        constraint("name", "", "Member must have length greater than or equal to 1"),
        constraint("name", "", "Member must satisfy regular expression pattern: [a-z]+"),
    ]
    assert problems({"Name": "abcdefgh"}) == problems({"Name": "a"}) == []


def test_a_pattern_must_match_the_whole_value():
    assert problems({"Name": "abc_"}) == [
        constraint("name", "abc_", "Member must satisfy regular expression pattern: [a-z]+")
    ]
    assert problems({"Name": "abc"}) == []


def test_java_unicode_classes_in_patterns_work():
    assert problems({"Label": "Größe 12 日本"}) == []
    assert problems({"Label": "a,b"}) == [
        constraint(
            "label", "a,b", r"Member must satisfy regular expression pattern: [\p{L}\p{N} ]*"
        )
    ]


def test_numeric_range():
    assert problems({"Count": 0}) == [
        constraint("count", "0", "Member must have value greater than or equal to 1")
    ]
    assert problems({"Count": 11}) == [
        constraint("count", "11", "Member must have value less than or equal to 10")
    ]
    assert problems({"Ratio": 0.1}) == [
        constraint("ratio", "0.1", "Member must have value greater than or equal to 0.25")
    ]
    assert problems({"Count": 1, "Ratio": 0.25}) == problems({"Count": 10}) == []


def test_the_largest_java_int_is_read_and_then_range_checked():
    assert problems({"Count": 2**31 - 1}) == [
        constraint("count", str(2**31 - 1), "Member must have value less than or equal to 10")
    ]


def test_a_fraction_sent_for_an_integer_is_truncated():
    clean, found = shapes.check(REQUEST, {"Name": "ok", "Count": 2.9})
    assert (clean["Count"], found) == (2, [])


def test_enum():
    assert problems({"Mode": "file"}) == [
        constraint("mode", "file", "Member must satisfy enum value set: [File, Pipe]")
    ]
    assert problems({"Mode": "Pipe"}) == []


def test_list_size_and_member_paths():
    three = [{"Key": "a"}, {"Key": "b"}, {"Key": "c"}]
    assert problems({"Items": three}) == [
        constraint(
            "items",
            "[{Key=a}, {Key=b}, {Key=c}]",
            "Member must have length less than or equal to 2",
        )
    ]
    assert problems({"Items": []}) == [
        constraint("items", "[]", "Member must have length greater than or equal to 1")
    ]
    assert problems({"Items": [{"Key": "a"}, {"Value": "b"}]}) == [
        "Value null at 'items.2.member.key' failed to satisfy constraint: Member must not be null"
    ]
    assert problems({"Items": [{"Key": "a"}, None]}) == [
        "Value null at 'items.2.member' failed to satisfy constraint: Member must not be null"
    ]
    assert problems({"Items": [{"Key": "a"}, {"Key": "b", "Value": "c"}]}) == []


def test_map_size_keys_and_values():
    assert problems({"Params": {"a": "1", "b": "2", "c": "3"}}) == [
        constraint("params", "{a=1, b=2, c=3}", "Member must have length less than or equal to 2")
    ]
    listed = (
        "[Member must have length less than or equal to 5, Member must have length greater "
        "than or equal to 0, Member must satisfy regular expression pattern: .*]"
    )
    assert problems({"Params": {"a": "123456"}}) == [
        constraint("params", "{a=123456}", f"Map value must satisfy constraint: {listed}")
    ]
    assert problems({"Params": {"abcd": "1"}}) == [
        constraint(
            "params", "{abcd=1}", "Map keys must satisfy constraint: " + listed.replace("5", "3")
        )
    ]
    assert problems({"Params": {"abc": "12345", "": ""}}) == []


def test_nested_structures_name_their_path_in_camel_case():
    assert problems({"Inner": {"InnerName": "A"}}) == [
        constraint("inner.innerName", "A", "Member must satisfy regular expression pattern: [a-z]+")
    ]
    assert problems({"Inner": {"InnerName": "a"}}) == []


def test_unknown_and_null_members_are_left_out():
    clean, found = shapes.check(REQUEST, {"Name": "ok", "Bogus": [1], "Count": None})
    assert (clean, found) == ({"Name": "ok"}, [])


def test_every_problem_is_reported_at_once():
    found = problems({"Name": None, "Count": 0, "Mode": "x"})
    assert len(found) == 3
    assert shapes.combine(found[:1]).startswith("1 validation error detected: Value null at 'name'")
    assert shapes.combine(found).startswith("3 validation errors detected: Value null at 'name'")
    assert "; Value '0' at 'count' failed" in shapes.combine(found)


def test_an_overlay_adds_the_services_own_limits():
    overlay = {"Count": {"max": 5}, "Request": {"required": ["Name", "Mode"]}}
    assert problems({"Count": 6}, overlay) == [
        constraint("count", "6", "Member must have value less than or equal to 5"),
        "Value null at 'mode' failed to satisfy constraint: Member must not be null",
    ]
    assert problems({"Count": 6}) == []
    assert problems({"Count": 5, "Mode": "File"}, overlay) == []


# ---- the SageMaker model and the limits localcloud adds to it --------------------------------


def good_job(**changes: Any) -> dict[str, Any]:
    body = {
        "TrainingJobName": "job-1",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    body.update(changes)
    return body


def refused(action: str, body: Any) -> tuple[str, str]:
    with pytest.raises(AwsError) as caught:
        validation.check_request(action, body)
    return caught.value.code, caught.value.message


def test_a_good_create_request_passes_unchanged():
    assert validation.check_request("CreateTrainingJob", good_job()) == good_job()


@pytest.mark.parametrize(
    ("seconds", "ok"), [(0, 1), (2_419_201, 2_419_200)], ids=["zero", "over-28-days"]
)
def test_max_runtime_is_1_to_28_days(seconds, ok):
    code, message = refused(
        "CreateTrainingJob", good_job(StoppingCondition={"MaxRuntimeInSeconds": seconds})
    )
    bound = "greater than or equal to 1" if seconds == 0 else "less than or equal to 2419200"
    assert (code, message) == (
        "ValidationException",
        f"1 validation error detected: Value '{seconds}' at "
        "'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have "
        f"value {bound}",
    )
    validation.check_request(
        "CreateTrainingJob", good_job(StoppingCondition={"MaxRuntimeInSeconds": ok})
    )


def test_the_service_default_max_runtime_is_one_day():
    assert validation.max_runtime_s(good_job(StoppingCondition={})) == 86400
    assert validation.max_runtime_s(good_job()) == 3600


def test_hyperparameter_limits_come_from_the_model():
    over = {f"k{i}": "v" for i in range(101)}
    assert refused("CreateTrainingJob", good_job(HyperParameters=over))[1].endswith(
        "at 'hyperParameters' failed to satisfy constraint: Member must have length less than "
        "or equal to 100"
    )
    assert (
        "Map value must satisfy constraint: [Member must have length less than or equal to 2500"
        in (refused("CreateTrainingJob", good_job(HyperParameters={"k": "v" * 2501}))[1])
    )
    assert (
        "Map keys must satisfy constraint: [Member must have length less than or equal to 256"
        in (refused("CreateTrainingJob", good_job(HyperParameters={"k" * 257: "v"}))[1])
    )
    at_limits = {**{f"k{i}": "v" for i in range(99)}, "k" * 256: "v" * 2500}
    validation.check_request("CreateTrainingJob", good_job(HyperParameters=at_limits))


def test_the_name_pattern_is_printed_as_the_service_prints_it():
    message = refused("CreateTrainingJob", good_job(TrainingJobName="my_job"))[1]
    assert message == (
        "1 validation error detected: Value 'my_job' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert (
        "length less than or equal to 63"
        in refused("CreateTrainingJob", good_job(TrainingJobName="a" * 64))[1]
    )
    validation.check_request("CreateTrainingJob", good_job(TrainingJobName="a" * 63))


def test_channel_names_follow_the_model_and_dot_folders_are_refused():
    channel = good_job()["InputDataConfig"][0]
    message = refused(
        "CreateTrainingJob", good_job(InputDataConfig=[{**channel, "ChannelName": "../x"}])
    )[1]
    assert (
        "'inputDataConfig.1.member.channelName' failed to satisfy constraint: Member must satisfy "
        r"regular expression pattern: [A-Za-z0-9\.\-_]+" in message
    )
    dots = good_job(InputDataConfig=[{**channel, "ChannelName": ".."}])
    validation.check_shape(dots)  # the pattern allows it ...
    with pytest.raises(AwsError, match="not supported by localcloud"):
        validation.check_supported(dots)  # ... but it is no folder of its own
    validation.check_supported(good_job())


def test_instance_type_and_count_are_needed_unless_instance_groups_are_given():
    resources = {"VolumeSizeInGB": 30}
    message = refused("CreateTrainingJob", good_job(ResourceConfig=resources))[1]
    assert message.startswith(
        "2 validation errors detected: Value null at 'resourceConfig.instanceType'"
    )
    groups = [{"InstanceGroupName": "g", "InstanceType": "ml.m5.large", "InstanceCount": 1}]
    validation.check_shape(good_job(ResourceConfig={**resources, "InstanceGroups": groups}))
    zero = {"InstanceType": "ml.m5.large", "InstanceCount": 0, "VolumeSizeInGB": 30}
    assert (
        "Value '0' at 'resourceConfig.instanceCount' failed to satisfy constraint: Member must "
        "have value greater than or equal to 1"
        in refused("CreateTrainingJob", good_job(ResourceConfig=zero))[1]
    )


def test_instance_types_are_the_models_enum():
    enum = shapes.service_model("sagemaker").shape_for("TrainingInstanceType").enum
    assert tuple(enum) == instances.TRAINING_INSTANCE_TYPES
    assert instances.is_valid("ml.m5.large") and not instances.is_valid("ml.t2.medium")
    assert instances.spec("ml.g5.12xlarge").gpus == 4


def test_every_training_job_action_is_checked():
    for action in validation.OPERATIONS:
        assert refused(action, [])[0] == "SerializationException"
    assert refused("DescribeTrainingJob", {"TrainingJobName": 5}) == (
        "SerializationException",
        "NUMBER_VALUE can not be converted to a String",
    )
    assert validation.check_request("DescribeTrainingJob", {"TrainingJobName": "a"}) == {
        "TrainingJobName": "a"
    }
