import { useState } from 'preact/hooks';
import { ApiError, api } from './api';

/** Asks for the API key once; the supervisor answers with an HttpOnly session cookie. */
export function Login({ onLogin }: { onLogin: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(key);
      setKey('');
      onLogin();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'Wrong API key.' : `Could not log in: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="login" onSubmit={submit}>
      <h1>Autopack dashboard</h1>
      <p class="muted">This supervisor needs its API key (AUTOPACK_API_KEY). It is asked for once; the browser then keeps a session cookie.</p>
      <label>
        API key
        <input name="key" type="password" autocomplete="current-password" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} required />
      </label>
      <button type="submit" disabled={busy || !key}>
        Log in
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
