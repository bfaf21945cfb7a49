// logviewer: the split view. Up to four viewers side by side, each in a
// frame with its own channels and filter (its own address); the page's
// address holds theirs, so a link reproduces the whole view. A click on a
// line's time in one pane moves every other pane to that moment.
'use strict';

(() => {
  const MAX_PANES = 4;
  const panesEl = document.getElementById('panes');
  const addBtn = document.getElementById('addpane');
  const panes = []; // {box, frame}

  // The page's address: #p=<pane hash>&p=<pane hash>...
  function readPanes() {
    const p = new URLSearchParams(location.hash.slice(1)).getAll('p');
    return p.length ? p.slice(0, MAX_PANES) : ['', ''];
  }

  function writePanes() {
    const p = new URLSearchParams();
    for (const pane of panes) {
      let h = '';
      try {
        h = pane.frame.contentWindow.location.hash.slice(1);
      } catch {
        h = '';
      }
      p.append('p', h);
    }
    const want = '#' + p.toString();
    if (location.hash !== want) history.replaceState(null, '', want);
  }

  function addPane(hash) {
    if (panes.length >= MAX_PANES) return;
    const box = document.createElement('section');
    box.className = 'pane';
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'icon paneclose';
    close.title = 'Close this pane';
    close.textContent = '\u00d7';
    const frame = document.createElement('iframe');
    frame.title = 'logviewer pane';
    frame.src = './' + (hash ? '#' + hash : '');
    const pane = { box, frame };
    close.addEventListener('click', () => {
      panes.splice(panes.indexOf(pane), 1);
      box.remove();
      update();
    });
    frame.addEventListener('load', () => {
      frame.contentWindow.addEventListener('hashchange', writePanes);
      writePanes();
    });
    box.append(close, frame);
    panesEl.append(box);
    panes.push(pane);
    update();
  }

  function update() {
    addBtn.disabled = panes.length >= MAX_PANES;
    panesEl.dataset.count = String(panes.length);
    writePanes();
  }

  // The shared time cursor: a pane says which moment was clicked, the
  // others show it.
  window.addEventListener('message', (ev) => {
    if (ev.origin !== location.origin || !ev.data || ev.data.type !== 'logviewer-cursor') return;
    for (const pane of panes) {
      if (pane.frame.contentWindow !== ev.source) {
        pane.frame.contentWindow.postMessage({ type: 'logviewer-cursor-show', t: ev.data.t }, location.origin);
      }
    }
  });

  addBtn.addEventListener('click', () => addPane(''));
  for (const h of readPanes()) addPane(h);
  // Viewers also write their address when their controls change without a
  // hashchange (replaceState): keep the page's in step.
  setInterval(writePanes, 1000);
})();
