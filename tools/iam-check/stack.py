"""Every Lambda function of a SAM template and what its role allows, offline.

    python stack.py TEMPLATE > stack.json

Translates the template as CloudFormation will (aws-sam-translator, the library behind
`sam validate` and `sam deploy`; no AWS call: local CodeUris become a dummy S3 location and
managed policy names resolve to nothing), then resolves the intrinsic functions the
functions and their roles use (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::Join, Fn::Select,
Fn::Split) to fixed, fake ARNs in one region and account. Parameters take their defaults.

For each function, by its Handler (the function's name, functions::Function): its role's
policy documents (inline, AWS::IAM::Policy and template-defined managed policies attached to
it), the ARN of the table its TABLE_NAME names and the execute-api prefix of the WebSocket
stage its WEBSOCKET_API_ENDPOINT names. tools/iam-check/check.mjs evaluates the recorded
calls against them.
"""

import json
import os
import re
import sys

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "cruddur-iam-check"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/fake",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}
# The property that holds a resource's physical name, where the template may set it.
NAME_PROPERTIES = ["TableName", "LogGroupName", "FunctionName", "QueueName", "RoleName",
                   "StageName", "TopicName", "UserPoolName", "Name"]


class Unresolvable(Exception):
    pass


class NoManagedPolicies:
    """SAM asks IAM for the ARNs of managed policies named in a function's Policies; offline
    there are none (the check reports a role whose policies it could not read)."""

    def load(self):
        return {}


def translate(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    with open(path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function" and not str(
            props.get("CodeUri", "s3://")
        ).startswith("s3://"):
            props["CodeUri"] = "s3://iam-check/code.zip"
        if resource.get("Type") == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://iam-check/layer.zip"
    return transform(template, {}, NoManagedPolicies())


class Stack:
    def __init__(self, template):
        self.resources = template.get("Resources", {})
        self.parameters = {
            name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
        }
        self.conditions = template.get("Conditions", {})

    def condition(self, name):
        return bool(self.resolve(self.conditions[name]))

    def exists(self, logical_id):
        cond = self.resources[logical_id].get("Condition")
        return cond is None or self.condition(cond)

    def name_of(self, logical_id):
        props = self.resources[logical_id].get("Properties") or {}
        for prop in NAME_PROPERTIES:
            if prop in props:
                return str(self.resolve(props[prop]))
        return logical_id

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.name_of(name)
        raise Unresolvable(f"Ref {name}")

    def arn(self, logical_id):
        kind = self.resources[logical_id]["Type"]
        name = self.name_of(logical_id)
        service = {
            "AWS::DynamoDB::Table": f"dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Logs::LogGroup": f"logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::SQS::Queue": f"sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::IAM::Role": f"iam::{ACCOUNT}:role/{name}",
            "AWS::Lambda::Function": f"lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::Cognito::UserPool": f"cognito-idp:{REGION}:{ACCOUNT}:userpool/{name}",
        }.get(kind)
        if service is None:
            service = f"{kind.split('::')[1].lower()}:{REGION}:{ACCOUNT}:{name}"
        return f"arn:aws:{service}"

    def get_att(self, logical_id, attribute):
        if logical_id not in self.resources:
            raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute}")
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute == "StreamArn":
            return self.arn(logical_id) + "/stream/1970-01-01T00:00:00.000"
        return f"{logical_id}.{attribute}"

    def sub(self, text, variables):
        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name not in PSEUDO:
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, value):
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(*parts)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, variables)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise Unresolvable(key)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not None}

    def role_policies(self, role_id):
        """The policy documents attached to role `role_id` in this template, and the managed
        policy ARNs attached that it does not define (their content is unknown here)."""
        role = self.resources[role_id].get("Properties") or {}
        documents = [
            {"name": p.get("PolicyName", "inline"), "document": self.resolve(p["PolicyDocument"])}
            for p in self.resolve(role.get("Policies", []))
        ]
        outside = []
        for arn in role.get("ManagedPolicyArns", []):
            if isinstance(arn, dict) and "Ref" in arn and arn["Ref"] in self.resources:
                continue  # an AWS::IAM::ManagedPolicy of the template: found below
            outside.append(self.resolve(arn))
        for logical_id, resource in self.resources.items():
            props = resource.get("Properties") or {}
            if resource["Type"] == "AWS::IAM::Policy":
                attached = props.get("Roles", [])
            elif resource["Type"] == "AWS::IAM::ManagedPolicy":
                attached = props.get("Roles", []) + [
                    {"Ref": role_id} for arn in role.get("ManagedPolicyArns", [])
                    if arn == {"Ref": logical_id}
                ]
            else:
                continue
            if {"Ref": role_id} in attached and self.exists(logical_id):
                documents.append({
                    "name": props.get("PolicyName", logical_id),
                    "document": self.resolve(props["PolicyDocument"]),
                })
        return documents, outside


def websocket_target(endpoint):
    """`https://<api>.execute-api.<region>.<suffix>/<stage>` -> (api, stage)."""
    match = re.match(r"^(?:https|wss)://([^.]+)\.execute-api\.[^/]+/([^/]+)", endpoint or "")
    return (match.group(1), match.group(2)) if match else None


def functions_of(stack):
    functions = {}
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::Lambda::Function" or not stack.exists(logical_id):
            continue
        props = resource["Properties"]
        name = props.get("Handler", logical_id)
        role = props.get("Role")
        entry = {"logical_id": logical_id, "problems": []}
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            role_id = role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) \
                else role["Fn::GetAtt"].split(".")[0]
            entry["role"] = role_id
            entry["policies"], entry["outside_policies"] = stack.role_policies(role_id)
        else:
            entry["role"] = None
            entry["policies"], entry["outside_policies"] = [], []
            entry["problems"].append(f"its Role is not a role of the template: {role}")
        env = stack.resolve((props.get("Environment") or {}).get("Variables", {}))
        if env.get("TABLE_NAME"):
            entry["table_arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{env['TABLE_NAME']}"
        target = websocket_target(env.get("WEBSOCKET_API_ENDPOINT"))
        if target:
            api, stage = target
            entry["connections_arn_prefix"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{stage}/"
        functions[name] = entry
    return functions


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    stack = Stack(translate(sys.argv[1]))
    try:
        functions = functions_of(stack)
    except Unresolvable as err:
        sys.exit(f"iam-check: cannot resolve {err} in {sys.argv[1]}")
    json.dump({"region": REGION, "account": ACCOUNT, "functions": functions}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
