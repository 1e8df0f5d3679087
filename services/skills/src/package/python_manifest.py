# Reads a Python skill's name, version and description from its source without running it:
# the BaseSkill subclasses the file defines and the string literals their
# `super().__init__(name=..., description=..., version=...)` passes. Prints a JSON list.
import ast
import json
import sys


def is_base_skill(base):
    return (isinstance(base, ast.Name) and base.id == "BaseSkill") or (
        isinstance(base, ast.Attribute) and base.attr == "BaseSkill"
    )


def literal(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def fields(cls):
    found = {}
    for call in ast.walk(cls):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        if call.func.attr != "__init__":
            continue
        for key, arg in zip(("name", "description", "version"), call.args):
            if literal(arg) is not None:
                found.setdefault(key, literal(arg))
        for keyword in call.keywords:
            if keyword.arg in ("name", "description", "version") and literal(keyword.value) is not None:
                found[keyword.arg] = literal(keyword.value)
    return found


path = sys.argv[1]
with open(path, encoding="utf-8") as source:
    tree = ast.parse(source.read(), path)
skills = [
    {"class": node.name, **fields(node)}
    for node in tree.body
    if isinstance(node, ast.ClassDef) and any(is_base_skill(b) for b in node.bases)
]
print(json.dumps(skills))
