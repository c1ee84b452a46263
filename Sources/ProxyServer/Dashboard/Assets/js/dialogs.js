// Modal questions with <dialog>: focus moves into the dialog, Escape cancels, focus returns to the opener.

function ask(dialog, prepare) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    prepare?.();
    dialog.showModal();
  });
}

/** The new name, or null when cancelled or unchanged. */
export async function askName(dialog, current) {
  const input = dialog.querySelector("input");
  const answer = await ask(dialog, () => {
    input.value = current;
    requestAnimationFrame(() => input.select());
  });
  const name = input.value.trim();
  return answer === "save" && name && name !== current ? name : null;
}

export async function confirmDelete(dialog, account) {
  dialog.querySelector("#confirm-text").textContent =
    `“${account.name}” (${account.email ?? account.id}) will be removed and its tokens forgotten. `
    + "To use it again, add it with a new login.";
  return (await ask(dialog)) === "confirm";
}
