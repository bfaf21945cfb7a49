// logviewer: the login page. The form posts to /login; a failed attempt
// comes back here with ?error=wrong or ?error=limited.
'use strict';

(() => {
  const messages = {
    wrong: 'Wrong user name or password.',
    limited: 'Too many failed logins from this address. Wait a few minutes and try again.',
  };
  const err = new URLSearchParams(location.search).get('error');
  const box = document.getElementById('loginerror');
  if (err && messages[err]) {
    box.textContent = messages[err];
    box.hidden = false;
  }
})();
