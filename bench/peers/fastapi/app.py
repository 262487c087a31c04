"""The bench endpoints on FastAPI: what a Python user runs.

One uvicorn worker on uvloop and httptools (the harness starts it), pydantic
v2 models for bodies and responses, asyncpg for the database read.
DATABASE_URL is optional: without it, /db/users/{id} answers 503.
"""

import itertools
import os
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Optional

import asyncpg
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, EmailStr, Field


class Message(BaseModel):
    message: str


class UserOut(BaseModel):
    id: int
    name: str
    email: str


class UserCreate(BaseModel):
    name: str = Field(min_length=2, max_length=50)
    email: EmailStr
    age: int = Field(ge=18, le=120)
    password: Optional[str] = Field(default=None, min_length=8, max_length=128)


class UserResponse(BaseModel):
    id: int
    name: str
    email: str
    created_at: datetime


pool: Optional[asyncpg.Pool] = None
ids = itertools.count(1)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    global pool
    url = os.environ.get("DATABASE_URL")
    if url:
        pool = await asyncpg.create_pool(url, min_size=10, max_size=10)
    yield
    if pool is not None:
        await pool.close()


app = FastAPI(title="fastapi-bench", lifespan=lifespan)


async def other_item(item_id: int) -> UserOut:
    return UserOut(id=item_id, name="", email="")


async def other_stats() -> Message:
    return Message(message="stats")


# The 100 other routes, registered before the measured ones as in every
# server of the harness.
for i in range(100):
    if i % 2 == 0:
        app.add_api_route(f"/items{i}/{{item_id}}", other_item, methods=["GET"], operation_id=f"item{i}")
    else:
        app.add_api_route(f"/items{i}/stats", other_stats, methods=["GET"], operation_id=f"stats{i}")


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json() -> Message:
    return Message(message="Hello, World!")


@app.get("/users/{id}")
async def read_user(id: int) -> UserOut:
    return UserOut(id=id, name=f"User {id}", email=f"user{id}@example.com")


@app.post("/users", status_code=201)
async def create_user(user: UserCreate, response: Response) -> UserResponse:
    id = next(ids)
    response.headers["Location"] = f"/users/{id}"
    return UserResponse(
        id=id,
        name=user.name,
        email=user.email,
        created_at=datetime.now(timezone.utc).replace(microsecond=0),
    )


@app.get("/db/users/{id}")
async def read_db_user(id: int) -> UserResponse:
    if pool is None:
        raise HTTPException(status_code=503, detail="DATABASE_URL is not set")
    row = await pool.fetchrow("SELECT id, name, email, created_at FROM bench_users WHERE id = $1", id)
    if row is None:
        raise HTTPException(status_code=404, detail="User not found")
    return UserResponse(id=row["id"], name=row["name"], email=row["email"], created_at=row["created_at"])
