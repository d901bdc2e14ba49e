"""The official A2A Python SDK (a2a-sdk 1.3.0) against the running banking agent.

Resolves the card through the SDK's resolver, builds clients with its ClientFactory, and
attaches the delegated token with its AuthInterceptor (driven by the card's bearer security
scheme). Then: SendMessage (get_balance), SendStreamingMessage (list_accounts), GetTask, and a
tool call for a skill the agent does not have. Prints one JSON summary line for the Rust test.

Environment: A2A_URL (the agent's base URL), TOKEN (a delegated token addressed to banking).
"""

import asyncio
import json
import os
import sys
import traceback

import httpx
from a2a.client import AuthInterceptor, ClientConfig, ClientFactory, CredentialService
from a2a.client.card_resolver import A2ACardResolver
from a2a.helpers.proto_helpers import get_data_parts, get_text_parts, new_data_part, new_message, new_text_part
from a2a.types import GetTaskRequest, Role, SendMessageRequest, TaskState


class Bearer(CredentialService):
    """Hands out the one token we hold for the card's `bearer` scheme."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_credentials(self, security_scheme_name, context):
        return self._token if security_scheme_name == "bearer" else None


def tool_call(text: str, skill: str, arguments: dict) -> SendMessageRequest:
    parts = [new_text_part(text), new_data_part({"skill": skill, "arguments": arguments}, "application/json")]
    return SendMessageRequest(message=new_message(parts, role=Role.ROLE_USER))


def state_name(state: int) -> str:
    return TaskState.Name(state)


async def main() -> dict:
    base, token = os.environ["A2A_URL"], os.environ["TOKEN"]
    interceptors = [AuthInterceptor(Bearer(token))]
    summary: dict = {}
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(http, base).get_agent_card()
        summary["card"] = {
            "name": card.name,
            "interfaces": [
                {"url": i.url, "binding": i.protocol_binding, "version": i.protocol_version}
                for i in card.supported_interfaces
            ],
            "skills": [s.id for s in card.skills],
            "streaming": card.capabilities.streaming,
            "security_schemes": sorted(card.security_schemes.keys()),
        }

        # SendMessage: a blocking call (the factory's non-streaming client).
        unary = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card, interceptors)
        events = [e async for e in unary.send_message(
            tool_call("What is my checking balance?", "get_balance", {"account": "checking"}))]
        task = events[-1].task
        artifact = task.artifacts[0] if task.artifacts else None
        summary["send"] = {
            "events": len(events),
            "task_id": task.id,
            "state": state_name(task.status.state),
            "text": get_text_parts(artifact.parts)[0] if artifact else None,
            "data": get_data_parts(artifact.parts)[0] if artifact else None,
        }

        # GetTask: the same task, finished.
        got = await unary.get_task(GetTaskRequest(id=task.id))
        summary["get_task"] = {"id": got.id, "state": state_name(got.status.state), "artifacts": len(got.artifacts)}

        # SendStreamingMessage: the task first, then its updates until it ends.
        streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card, interceptors)
        kinds, states, task_id = [], [], None
        async for event in streaming.send_message(tool_call("Which accounts do I have?", "list_accounts", {})):
            kind = event.WhichOneof("payload")
            kinds.append(kind)
            if kind == "task":
                task_id = event.task.id
                states.append(state_name(event.task.status.state))
            elif kind == "status_update":
                states.append(state_name(event.status_update.status.state))
        summary["stream"] = {"kinds": kinds, "states": states, "task_id": task_id}

        # A skill the agent does not have: a JSON-RPC error (HTTP 200) the SDK maps to its type.
        try:
            await anext(unary.send_message(tool_call("Fly me to the moon.", "launch_rocket", {})))
            summary["unknown_skill"] = {"error": None}
        except Exception as e:  # noqa: BLE001 - the type is what we report
            summary["unknown_skill"] = {"error": type(e).__name__, "message": str(e)}
    return summary


if __name__ == "__main__":
    try:
        print(json.dumps(asyncio.run(main()), default=str))
    except Exception as e:  # noqa: BLE001 - report, then fail
        traceback.print_exc()
        print(json.dumps({"failure": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
