// Type-checked (tsc --noEmit) against the types openapi-typescript generates
// from the service's document (.ci/openapi-checks.sh writes generated/openapi.ts).
// Never run: compiling is the check. If the document lost the operation, its
// body or its 201/422 responses, or typed them loosely, this stops compiling.
import type { components, paths } from "./generated/openapi";

type CreateUser = paths["/api/v1/users"]["post"];
type UserCreate = CreateUser["requestBody"] extends { content: { "application/json": infer B } } | undefined ? B : never;
type Created = CreateUser["responses"][201]["content"]["application/json"];
type Invalid = CreateUser["responses"][422]["content"]["application/json"];

export async function createUser(baseUrl: string, user: UserCreate, token?: string): Promise<Created> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${baseUrl}/api/v1/users`, { method: "POST", headers, body: JSON.stringify(user) });
  if (res.status === 201) return (await res.json()) as Created;
  if (res.status === 422) {
    const invalid = (await res.json()) as Invalid;
    const errors: components["schemas"]["ValidationError"][] = invalid.detail ?? [];
    throw new Error(errors.map((e) => `${e.loc.join(".")}: ${e.msg}`).join("; "));
  }
  throw new Error(`unexpected status ${res.status}`);
}

export async function example(): Promise<string> {
  const user = await createUser("http://127.0.0.1:8000", { name: "Ada", email: "ada@example.com", age: 36 });
  const id: number = user.id;
  const when: string = user.created_at;
  return `${id} ${user.name} <${user.email}> ${when}`;
}

// The generated types are strict, not `any`: each of these must be an error.
// @ts-expect-error `age` is an integer, not a string
export const wrongType: UserCreate = { name: "Ada", email: "ada@example.com", age: "36" };
// @ts-expect-error `email` is required
export const missingField: UserCreate = { name: "Ada", age: 36 };
// @ts-expect-error the created user has no `password`
export const leaked: string = ({} as Created).password;
