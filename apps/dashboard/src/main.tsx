import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, setUnauthorizedHandler } from './api';
import { Login } from './login';
import { Overview } from './overview';
import { RunPage } from './run';
import './style.css';

/** The route from the URL's hash: `#/` (runs and builds) or `#/runs/<id>`. */
function useRoute(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash.replace(/^#/, '') || '/';
}

type Auth = 'checking' | 'in' | 'out';

function App() {
  const [auth, setAuth] = useState<Auth>('checking');
  const [keyRequired, setKeyRequired] = useState(false);
  const route = useRoute();
  useEffect(() => {
    setUnauthorizedHandler(() => setAuth('out'));
    api
      .session()
      .then((s) => {
        setKeyRequired(s.key_required);
        setAuth(s.authenticated ? 'in' : 'out');
      })
      .catch(() => setAuth('out'));
  }, []);

  const logout = async () => {
    await api.logout();
    setAuth('out');
  };

  if (auth === 'checking') return <p class="muted">Loading…</p>;
  if (auth === 'out') return <Login onLogin={() => setAuth('in')} />;
  const run = /^\/runs\/(.+)$/.exec(route)?.[1];
  return (
    <>
      <header class="top">
        <a href="#/" class="brand">
          Autopack
        </a>
        <nav>
          <a href="#/">Runs &amp; builds</a>
          <a href="/docs" target="_blank" rel="noopener">
            API docs
          </a>
          {keyRequired && (
            <button class="link" onClick={logout}>
              Log out
            </button>
          )}
        </nav>
      </header>
      <main>{run ? <RunPage runId={decodeURIComponent(run)} /> : <Overview />}</main>
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
